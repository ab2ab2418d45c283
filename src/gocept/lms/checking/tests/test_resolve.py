"""The name cache: time limit, remembered answers and failures, one lookup
a name; and how the checker reports what it found."""

import asyncio
import socket
import threading
import unittest
import unittest.mock

from gocept.lms.checking import guard, policy
from gocept.lms.checking.resolve import NameCache, ThreadedLookup
from gocept.lms.checking.tests import helpers


class Clock:

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class NameCacheTests(unittest.IsolatedAsyncioTestCase):

    def setUp(self):
        self.clock = Clock()
        self.stub = guard.StaticResolver({'www.example': '192.0.2.10',
                                          'two.example': ['192.0.2.11',
                                                          '2001:db8::11']})
        self.names = NameCache(self.stub, timeout=5, ttl=60, negative_ttl=10,
                               size=100, clock=self.clock)

    async def test_answers_are_remembered_for_their_ttl(self):
        first = await self.names.resolve('www.example', 80)
        self.assertEqual([('192.0.2.10', 80)],
                         [(i['host'], i['port']) for i in first])
        self.clock.now += 59
        again = await self.names.resolve('WWW.example', 443)
        # the port is the asker's, the address the remembered one
        self.assertEqual([('192.0.2.10', 443)],
                         [(i['host'], i['port']) for i in again])
        self.assertEqual(['www.example'], self.stub.queries)
        self.assertEqual(['192.0.2.10'], self.names.peek('www.example', 2))
        self.clock.now += 2
        self.assertIsNone(self.names.peek('www.example', 2))
        await self.names.resolve('www.example', 80)
        self.assertEqual(2, len(self.stub.queries))

    async def test_every_address_is_kept(self):
        infos = await self.names.resolve('two.example', 80, socket.AF_UNSPEC)
        self.assertEqual(
            [('192.0.2.11', socket.AF_INET),
             ('2001:db8::11', socket.AF_INET6)],
            [(i['host'], i['family']) for i in infos])

    async def test_failures_are_remembered_for_their_own_ttl(self):
        for _ in range(2):
            with self.assertRaises(socket.gaierror) as caught:
                await self.names.resolve('nowhere.example', 80)
            self.assertEqual(socket.EAI_NONAME, caught.exception.errno)
        self.assertEqual(['nowhere.example'], self.stub.queries)
        self.assertTrue(self.names.knows('nowhere.example', socket.AF_INET))
        self.assertEqual([], self.names.peek('nowhere.example',
                                             socket.AF_INET))
        self.clock.now += 11
        self.assertFalse(self.names.knows('nowhere.example', socket.AF_INET))
        with self.assertRaises(socket.gaierror):
            await self.names.resolve('nowhere.example', 80)
        self.assertEqual(2, len(self.stub.queries))

    async def test_a_remembered_failure_is_a_new_exception_each_time(self):
        caught = []
        for _ in range(2):
            try:
                await self.names.resolve('nowhere.example', 80)
            except socket.gaierror as e:
                caught.append(e)
        self.assertIsNot(caught[0], caught[1])
        self.assertEqual(caught[0].args, caught[1].args)

    async def test_a_slow_name_fails_after_the_time_limit(self):
        stub = guard.StaticResolver({'slow.example': '192.0.2.12'},
                                    delays={'slow.example': 60})
        names = NameCache(stub, timeout=0.05, negative_ttl=10,
                          clock=self.clock)
        with self.assertRaises(socket.gaierror) as caught:
            await names.resolve('slow.example', 80)
        self.assertEqual(socket.EAI_AGAIN, caught.exception.errno)
        self.assertEqual('no answer within 0.05 s', caught.exception.strerror)
        # remembered: the next asker does not wait again
        with self.assertRaises(socket.gaierror):
            await names.resolve('slow.example', 80)
        self.assertEqual(1, len(stub.queries))

    async def test_one_lookup_for_all_who_ask_at_once(self):
        stub = guard.StaticResolver({'slow.example': '192.0.2.12'},
                                    delays={'slow.example': 0.05})
        names = NameCache(stub, clock=self.clock)
        answers = await asyncio.gather(
            *[names.resolve('slow.example', 80) for _ in range(5)])
        self.assertEqual(1, len(stub.queries))
        self.assertEqual(5 * ['192.0.2.12'], [a[0]['host'] for a in answers])

    async def test_an_asker_giving_up_does_not_cancel_the_lookup(self):
        stub = guard.StaticResolver({'slow.example': '192.0.2.12'},
                                    delays={'slow.example': 0.05})
        names = NameCache(stub, clock=self.clock)
        impatient = asyncio.ensure_future(names.resolve('slow.example', 80))
        patient = asyncio.ensure_future(names.resolve('slow.example', 80))
        await asyncio.sleep(0)
        impatient.cancel()
        self.assertEqual('192.0.2.12', (await patient)[0]['host'])
        self.assertEqual(['192.0.2.12'], names.peek('slow.example', 2))

    async def test_the_least_recently_used_names_go_first(self):
        stub = guard.StaticResolver(
            {f'n{i}.example': f'192.0.2.{i}' for i in range(1, 5)})
        names = NameCache(stub, size=3, clock=self.clock)
        for i in (1, 2, 3):
            await names.resolve(f'n{i}.example')
        await names.resolve('n1.example')       # used again: kept
        await names.resolve('n4.example')       # n2 goes
        self.assertEqual([True, False, True, True],
                         [names.knows(f'n{i}.example', socket.AF_INET)
                          for i in range(1, 5)])


class ThreadedLookupTests(unittest.IsolatedAsyncioTestCase):

    async def test_getaddrinfo_in_threads_of_its_own(self):
        threads = []

        def fake(host, port, family, kind, proto, flags):
            threads.append(threading.current_thread().name)
            return [(socket.AF_INET, kind, 6, '', ('192.0.2.7', port)),
                    (socket.AF_INET6, kind, 6, '',
                     ('2001:db8::7', port, 0, 0))]

        lookup = ThreadedLookup(threads=2)
        with unittest.mock.patch.object(socket, 'getaddrinfo', fake):
            infos = await lookup.resolve('www.example', 443, socket.AF_UNSPEC)
        pool = lookup._pool
        await lookup.close()
        pool.shutdown(wait=True)
        self.assertEqual([('192.0.2.7', 443, socket.AF_INET),
                          ('2001:db8::7', 443, socket.AF_INET6)],
                         [(i['host'], i['port'], i['family']) for i in infos])
        self.assertTrue(threads[0].startswith('lms-dns'), threads)


class CheckerNameTests(helpers.ServerTestCase):
    """The name cache as the checker uses it."""

    dns = {'www.example': '127.0.1.1', 'intranet.example': '10.1.2.3',
           'slow.example': '127.0.1.1'}
    dns_delays = {'slow.example': 30}

    def checker_settings(self):
        return helpers.settings(dns_timeout=0.1)

    async def test_a_missing_name_is_looked_up_once_for_many_urls(self):
        results = [r async for r in self.checker.check_many(
            (n, f'http://nowhere.example/{n}', None) for n in range(10))]
        self.assertEqual(
            10 * ['host name nowhere.example does not exist (first failure)'],
            [r.reason for r in results])
        self.assertEqual(['nowhere.example'], self.resolver.queries)

    async def test_the_guard_checks_remembered_answers_too(self):
        for _ in range(2):
            result = await self.checker.check('http://intranet.example/')
            self.assertEqual(
                'forbidden by policy: intranet.example resolves to '
                '10.1.2.3 (private)', result.reason)
        self.assertEqual(['intranet.example'], self.resolver.queries)

    async def test_a_name_without_answer_in_time_is_a_dns_failure(self):
        outcome = await self.outcome('http://slow.example/ok')
        self.assertEqual(policy.KIND_DNS, outcome.kind)
        self.assertEqual(
            'DNS lookup of slow.example failed: no answer within 0.1 s',
            outcome.detail)

    async def test_real_dns_fails_the_tests(self):
        # Without this, a broken patch would let tests use the real DNS.
        checker = helpers.Checker(helpers.settings())   # the real lookup
        async with checker:
            with self.assertLogs('gocept.lms.checking.engine'):
                result = await checker.check('http://www.example/')
        self.assertEqual(['www.example'], self.real_lookups)
        self.assertIn('AssertionError', result.reason)
        self.real_lookups.clear()


if __name__ == '__main__':
    unittest.main()
