"""How the engine hands out work: slow names wait aside, names on one
address share its rate, and `more` refills the work as it runs low."""

import asyncio
import socket
import unittest
import unittest.mock

from gocept.lms.checking import engine, guard
from gocept.lms.checking.engine import Pacer
from gocept.lms.checking.tests import helpers


class GatedResolver(guard.StaticResolver):
    """Names in `gated` get no answer until the test opens the gate."""

    def __init__(self, mapping, gated):
        super().__init__(mapping)
        self.gated = set(gated)
        self.gate = asyncio.Event()

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if host in self.gated:
            await self.gate.wait()
        return await super().resolve(host, port, family)


class PacerTests(unittest.TestCase):

    def test_a_request_waits_for_all_its_keys(self):
        pacer = Pacer(1.0)
        self.assertEqual(0, pacer.reserve(('a.example', '192.0.2.1'), 100.0))
        # another name on the same address waits for the address
        self.assertEqual(1.0, pacer.delay(('b.example', '192.0.2.1'), 100.0))
        self.assertEqual(1.0, pacer.reserve(('b.example', '192.0.2.1'), 100.0))
        # and took the slot of its own name as well
        self.assertEqual(2.0, pacer.delay(('b.example',), 100.0))
        self.assertEqual(0, pacer.delay(('c.example', '192.0.2.2'), 100.0))

    def test_keys_of_a_host(self):
        self.assertEqual(('a.example', '192.0.2.1', '2001:db8::1'),
                         engine.pacing_keys('a.example', [
                             '192.0.2.1', '2001:db8::1', '192.0.2.1']))
        self.assertEqual(('192.0.2.1',),
                         engine.pacing_keys('192.0.2.1', ['192.0.2.1']))


class SlowNameTests(unittest.IsolatedAsyncioTestCase):
    """A URL whose host name takes long to resolve holds no work slot."""

    async def asyncSetUp(self):
        self.server = await helpers.LocalHTTPServer(
            ['127.0.1.1', '127.0.1.2']).start()
        self.slow = ['slow-a.example', 'slow-b.example', 'slow-c.example']
        self.resolver = GatedResolver(
            {name: '127.0.1.2' for name in self.slow}, self.slow)

    async def asyncTearDown(self):
        await self.server.stop()

    async def check_in_order(self, rate):
        port = self.server.ports['127.0.1.2']
        slow = [(f'slow {name}', f'http://{name}:{port}/ok', None)
                for name in self.slow]
        fast = [(f'fast {n}', self.server.url(f'/ok?{n}'), None)
                for n in range(20)]
        # two work slots, three slow names queued first
        checker = engine.Checker(
            helpers.settings(concurrency=2, per_host_rate=rate),
            resolver=self.resolver)
        order = []
        with helpers.no_real_dns() as real_lookups:
            async with checker:
                async for result in checker.check_many(slow + fast):
                    order.append((result.key, result.state))
                    if len(order) == len(fast):
                        # the slow names answer once the others are done
                        self.resolver.gate.set()
        self.assertEqual([], real_lookups)
        self.assertEqual({(key, 'ok') for key, _, _ in fast}, set(order[:20]))
        self.assertEqual({(key, 'ok') for key, _, _ in slow}, set(order[20:]))
        self.assertEqual(set(self.slow), set(self.resolver.queries))

    async def test_without_pacing(self):
        await self.check_in_order(rate=0)

    async def test_with_pacing(self):
        await self.check_in_order(rate=100)

    async def test_urls_of_a_slow_name_leave_room_for_others(self):
        port = self.server.ports['127.0.1.2']
        todo = [(f'slow {n}', f'http://slow-a.example:{port}/ok?{n}', None)
                for n in range(2)]
        todo += [(f'fast {n}', self.server.url(f'/ok?{n}'), None)
                 for n in range(6)]

        async def more(room):
            given = todo[:room]
            del todo[:room]
            return given

        # room for two: both taken by the slow name's URLs at first
        checker = engine.Checker(
            helpers.settings(concurrency=2, dns_timeout=5),
            resolver=self.resolver)
        order = []
        with unittest.mock.patch.object(engine, 'SLOW_LOOKUP', 0.05):
            async with checker:
                async for result in checker.check_many(
                        (), more=more, hold=2, poll=60):
                    order.append(result.key)
                    if len(order) == 6:
                        self.resolver.gate.set()
        self.assertEqual({f'fast {n}' for n in range(6)}, set(order[:6]))
        self.assertEqual({'slow 0', 'slow 1'}, set(order[6:]))


class SharedAddressTests(helpers.ServerTestCase):
    """Names that resolve to one address share its rate."""

    dns = {'a.example': '127.0.1.1', 'b.example': '127.0.1.1'}

    def checker_settings(self):
        return helpers.settings(per_host_rate=5)   # 0.2 s apart

    async def test_names_on_one_address_share_its_rate(self):
        port = self.server.ports['127.0.1.1']
        items = [(f'{name} {n}', f'http://{name}:{port}/ok?{n}', None)
                 for n in range(3) for name in ('a.example', 'b.example')]
        # a redirect from one name to the other is paced by the address too
        items.append(('hop', f'http://a.example:{port}/redirect-to?'
                             f'http://b.example:{port}/ok?hop', None))
        results = [r async for r in self.checker.check_many(items)]
        self.assertEqual(len(items) * ['ok'], [r.state for r in results])
        arrivals = sorted(when for when, address, *_ in self.server.log)
        self.assertEqual(8, len(arrivals))
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        self.assertGreaterEqual(min(gaps), 0.2 - 0.001, gaps)


class MoreTests(helpers.ServerTestCase):
    """`more` brings work while the checks run."""

    async def test_more_is_asked_again_while_checks_run(self):
        asks = []

        async def more(room):
            asks.append(room)
            if len(asks) == 1:
                return [('slow', self.server.url('/slow?1.5'), None)]
            if len(asks) == 3:
                # turned up after `more` had nothing
                return [('late', self.server.url('/ok?late'), None)]
            return []

        order = [r.key async for r in self.checker.check_many(
            (), more=more, hold=10, poll=0.05)]
        self.assertEqual(['late', 'slow'], order)
        self.assertGreater(len(asks), 3)

    async def test_no_more_than_hold_items_wait(self):
        todo = [(n, self.server.url(f'/ok?{n}'), None) for n in range(40)]
        asks = []

        async def more(room):
            asks.append(room)
            given = todo[:room]
            del todo[:room]
            return given

        results = [r async for r in self.checker.check_many(
            (), more=more, hold=5, poll=60)]
        self.assertEqual(list(range(40)), sorted(r.key for r in results))
        self.assertLessEqual(max(asks), 5)
        # refilled as the work ran low, not once at the end of a batch
        self.assertGreaterEqual(len(asks), 40 // 5)


if __name__ == '__main__':
    unittest.main()


class ParkedCheckTests(unittest.IsolatedAsyncioTestCase):
    """A check that waits for its host's next slot in the middle (here:
    the GET that confirms a failed HEAD) holds no work slot meanwhile."""

    async def asyncSetUp(self):
        self.server = await helpers.LocalHTTPServer(
            ['127.0.1.1', '127.0.1.2']).start()

    async def asyncTearDown(self):
        await self.server.stop()

    async def test_other_hosts_are_served_while_a_check_waits(self):
        broken_head = self.server.url('/head404', '127.0.1.1')
        items = [('confirmed', broken_head, None)] + [
            (n, self.server.url(f'/ok?{n}', '127.0.1.2'), None)
            for n in range(3)]
        # one work slot; the URL whose HEAD fails comes first
        checker = engine.Checker(
            helpers.settings(concurrency=1, per_host_rate=1))
        async with checker:
            states = {r.key: r.state async for r in checker.check_many(items)}
        self.assertEqual({'confirmed': 'ok', 0: 'ok', 1: 'ok', 2: 'ok'},
                         states)
        order = [(host, method, target)
                 for _, host, method, target, _ in self.server.log]
        self.assertEqual(('127.0.1.1', 'HEAD', '/head404'), order[0])
        confirming = order.index(('127.0.1.1', 'GET', '/head404'))
        # While the first check slept until its host's next slot, the
        # other host's first URL was checked; with the work slot held
        # through the wait, the GET would have been the second request.
        self.assertEqual('127.0.1.2', order[1][0])
        self.assertGreater(confirming, 1)
        # and the one host still saw its requests an interval apart
        times = [t for t, host, *_ in self.server.log if host == '127.0.1.1']
        self.assertGreaterEqual(times[1] - times[0], 1.0)

    async def test_of_two_surplus_workers_one_stops(self):
        # One worker came back from its wait while the other stood in
        # for it: two at work where one is wanted. Both look at the same
        # moment; one stops, the other goes on with the work.
        stopped = []
        go, stay = asyncio.Event(), asyncio.Event()

        async def run():
            if len(workers.started) == 1:
                await workers.park(0.01)    # its stand-in starts
            await go.wait()
            if workers.surplus():
                stopped.append(True)
                return
            await stay.wait()

        workers = engine._Workers(1, run)
        workers.fill()
        await asyncio.sleep(0.05)
        self.assertEqual((2, 0), (workers.running, workers.parked))
        go.set()
        await asyncio.sleep(0.01)
        self.assertEqual([True], stopped)
        self.assertEqual(1, workers.running)
        stay.set()
        await asyncio.gather(*workers.started)
        self.assertEqual(0, workers.running)
