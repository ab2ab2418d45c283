import asyncio
import collections
import datetime
import time
import unittest
import unittest.mock

from gocept.lms.checking import engine, policy
from gocept.lms.checking.engine import Pacer
from gocept.lms.checking.tests import helpers


class PacerTests(unittest.TestCase):

    def test_slots(self):
        pacer = Pacer(1.0)
        self.assertEqual(0, pacer.reserve(('a',), 100.0))
        self.assertEqual(1.0, pacer.reserve(('a',), 100.0))
        self.assertEqual(0, pacer.reserve(('b',), 100.0))
        self.assertEqual(1.5, pacer.reserve(('a',), 100.5))
        self.assertEqual(0, pacer.delay(('a',), 103.0))


class EngineTests(helpers.ServerTestCase):

    hosts = ('127.0.1.1', '127.0.1.2', '127.0.1.3')

    async def test_result_shape(self):
        old = policy.History(time.time() - 3 * 86400, 3, 'http 404', False)
        items = [('a', self.server.url('/ok'), None),
                 ('b', self.server.url('/notfound'), old),
                 ('c', 'gopher://example.org/', None),
                 ('d', 'javascript:alert(1)', None),
                 ('e', 'no-scheme', None)]
        before = datetime.datetime.now(datetime.timezone.utc)
        results = {r.key: r async for r in self.checker.check_many(items)}
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertEqual(set('abcde'), set(results))
        a = results['a']
        self.assertEqual(('ok', '200 OK', 86400, None),
                         (a.state, a.reason, a.next_check, a.history))
        self.assertEqual(datetime.timezone.utc, a.checked_at.tzinfo)
        # when the check finished: during the call
        self.assertTrue(before <= a.checked_at <= after, a.checked_at)
        self.assertEqual('unavailable', results['b'].state)
        self.assertEqual(4, results['b'].history.failures)
        self.assertEqual(
            ('unsupported protocol', 'unsupported protocol: gopher'),
            (results['c'].state, results['c'].reason))
        self.assertEqual('unsupported protocol', results['d'].state)
        self.assertEqual('unavailable', results['e'].state)

    async def test_results_stream_as_they_finish(self):
        items = [('slow', self.server.url('/slow?0.5'), None),
                 ('fast', self.server.url('/ok'), None)]
        order = [r.key async for r in self.checker.check_many(items)]
        self.assertEqual(['fast', 'slow'], order)

    async def test_concurrency_limit(self):
        checker = engine.Checker(helpers.settings(concurrency=3))
        items = [(n, self.server.url(f'/slow?0.2', host), None)
                 for n, host in enumerate(self.hosts * 3)]
        start = time.monotonic()
        async with checker:
            results = [r async for r in checker.check_many(items)]
        self.assertEqual(9, len(results))
        self.assertGreaterEqual(time.monotonic() - start, 0.6)

    async def test_one_broken_check_does_not_end_the_batch(self):
        with unittest.mock.patch.object(
                engine, 'check_http', side_effect=RuntimeError('boom')):
            with self.assertLogs('gocept.lms.checking.engine'):
                results = [r async for r in self.checker.check_many(
                    [(1, self.server.url('/ok'), None),
                     (2, 'mailto:a@example.com', None)])]
        results.sort()
        self.assertEqual('internal error: RuntimeError: boom',
                         results[0].reason.split(' (')[0])
        self.assertEqual('ok', results[1].state)

    async def test_stopping_early_cancels_the_rest(self):
        items = [(n, self.server.url('/slow?0.3'), None) for n in range(40)]
        gen = self.checker.check_many(items)
        async for result in gen:
            break
        await gen.aclose()
        before = len(self.server.log)
        await asyncio.sleep(0.5)
        self.assertEqual(before, len(self.server.log))


class ConvenienceTests(unittest.TestCase):

    def test_run_blocks_and_returns_results(self):
        results = engine.run([(1, 'mailto:a@example.com', None),
                              (2, 'news:comp.lang.python', None)])
        self.assertEqual(
            [(1, 'ok'), (2, 'unsupported protocol')],
            sorted((r.key, r.state) for r in results))


class PolitenessTests(helpers.ServerTestCase):
    """Pacing proven from the server's own arrival times per address."""

    hosts = ('127.0.1.1', '127.0.1.2', '127.0.1.3')

    def checker_settings(self):
        return helpers.settings(per_host_rate=5)   # 0.2 s apart

    def times(self):
        arrivals = collections.defaultdict(list)
        for when, host, *_ in self.server.log:
            arrivals[host].append(when)
        return arrivals

    def gaps(self):
        return {host: [b - a for a, b in zip(times, times[1:])]
                for host, times in self.times().items()}

    async def test_requests_per_host_are_spaced(self):
        paths = ['/ok', '/notfound', '/head405', '/redirect/2', '/ok']
        items = [(f'{host}{path}', self.server.url(path, host), None)
                 for path in paths for host in self.hosts]
        start = time.monotonic()
        results = [r async for r in self.checker.check_many(items)]
        elapsed = time.monotonic() - start
        self.assertEqual(len(items), len(results))
        # per host: 5 URLs, HEAD+GET for /notfound, after which the host
        # is asked with GET first (one request for /head405), 4 requests
        # for /redirect/2 and its hops
        gaps = self.gaps()
        self.assertEqual(set(self.hosts), set(gaps))
        for host, host_gaps in gaps.items():
            self.assertEqual(8, len(host_gaps))
            self.assertGreaterEqual(min(host_gaps), 0.2 - 0.001, host)
        # the hosts were served side by side: each host's requests
        # overlap the others' (the first request of every host comes
        # before the last request of any)
        firsts = [min(times) for times in self.times().values()]
        lasts = [max(times) for times in self.times().values()]
        self.assertLess(max(firsts), min(lasts))
        self.assertGreater(elapsed, 8 * 0.2 - 0.1)

    async def test_default_rate_is_one_per_second(self):
        checker = engine.Checker(helpers.settings(per_host_rate=1))
        items = [(n, self.server.url('/ok', host), None)
                 for n, host in enumerate(self.hosts[:2] * 3)]
        async with checker:
            results = [r async for r in checker.check_many(items)]
        self.assertEqual(6, len(results))
        for host, host_gaps in self.gaps().items():
            self.assertEqual(2, len(host_gaps))
            self.assertGreaterEqual(min(host_gaps), 0.999)
        # One host's wait does not hold up the other: the hosts' first
        # requests come before either host's second, and the seconds
        # before either host's third. Served one host after the other
        # (or a host's slot missed), a host's next request would come
        # first.
        a, b = (sorted(self.times()[host]) for host in self.hosts[:2])
        for k in range(2):
            self.assertLess(max(a[k], b[k]), min(a[k + 1], b[k + 1]),
                            (a, b))

    async def test_pacing_holds_across_batches(self):
        for batch in range(2):
            [r async for r in self.checker.check_many(
                [(1, self.server.url('/ok'), None)])]
        self.assertGreaterEqual(self.gaps()["127.0.1.1"][0], 0.199)
