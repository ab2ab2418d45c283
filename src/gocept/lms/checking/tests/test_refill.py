"""The checker's claims follow the checks: no claimed URL waits for the
slowest of a batch, and a URL registered meanwhile is taken at the next
claim (gocept.lms.checker.Runner.check_site, with its database work in
memory)."""

import unittest

import gocept.lms.checker
import gocept.lms.settings
from gocept.lms.checking import engine
from gocept.lms.checking.tests import helpers
from gocept.lms.checking.tests.test_dispatch import GatedResolver


class Schedule:
    """The checker's database work (`checkerdb.DatabaseWork`) in memory:
    due URLs the test controls, the claims taken and the results written.
    Each claim has a lease end of its own."""

    def __init__(self, due):
        self.due = list(due)
        self.claims = []        # (lease end, keys)
        self.written = []       # (lease end, key)
        self.batches = []       # how many results each write had
        self.on_claim = self.on_write = lambda: None

    async def call(self, name, *args):
        return getattr(self, name)(*args)

    def shutdown(self):
        pass

    def claim(self, site_name, limit):
        until = 1000 + len(self.claims)
        items = self.due[:limit]
        del self.due[:limit]
        self.claims.append((until, [key for key, _, _ in items]))
        self.on_claim()
        return until, items, [0] * len(items)  # all from shard 0

    def write(self, site_name, until, results, shards):
        # each result goes back to the shard its claim came from
        assert shards == [0] * len(results), shards
        self.batches.append(len(results))
        self.written.extend(zip(until, (r.key for r in results)))
        self.on_write()
        return len(results), 0, 0


class RefillTests(unittest.IsolatedAsyncioTestCase):

    async def asyncSetUp(self):
        self.server = await helpers.LocalHTTPServer(
            ['127.0.1.1', '127.0.1.2']).start()

    async def asyncTearDown(self):
        await self.server.stop()

    async def test_a_slow_name_holds_up_only_its_own_url(self):
        await self.slow_name_holds_up_only_its_own_url(
            {'check-write-size': 1})

    async def test_a_batch_that_fills_slowly_is_written_after_a_while(self):
        # Batches of 100 never fill here: the new URL's result is written
        # because the results before it waited check-write-interval.
        await self.slow_name_holds_up_only_its_own_url(
            {'check-write-size': 100, 'check-write-interval': 0})

    async def slow_name_holds_up_only_its_own_url(self, write_settings):
        port = self.server.ports['127.0.1.2']
        resolver = GatedResolver({'slow.example': '127.0.1.2'},
                                 ['slow.example'])
        slow = ('slow', f'http://slow.example:{port}/ok', None)
        fast = [(f'fast {n}', self.server.url(f'/ok?{n}'), None)
                for n in range(6)]
        new = ('new', self.server.url('/ok?new'), None)
        schedule = Schedule([slow] + fast)

        def register_after_the_first_claim():
            if len(schedule.claims) == 1:
                schedule.due.append(new)

        def answer_once_the_new_url_is_written():
            if any(key == 'new' for _, key in schedule.written):
                resolver.gate.set()

        schedule.on_claim = register_after_the_first_claim
        schedule.on_write = answer_once_the_new_url_is_written
        runner = gocept.lms.checker.Runner(
            None, settings=gocept.lms.settings.Settings(dict({
                'check-claim-size': 4, 'check-poll': 0.05,
                'check-stats-file': ''}, **write_settings)),
            writer=schedule)
        stats = gocept.lms.checker.Stats()
        with helpers.no_real_dns() as real_lookups:
            async with engine.Checker(helpers.settings(concurrency=2),
                                      resolver=resolver) as checker:
                claimed = await runner.check_site(checker, 'lms', stats)
        self.assertEqual([], real_lookups)
        self.assertEqual(8, claimed)
        self.assertEqual(8, stats.written)
        self.assertEqual({'ok': 8}, dict(stats.states))
        written = [key for _, key in schedule.written]
        # the URL registered after the first claim did not wait for the
        # slow name claimed before it
        self.assertLess(written.index('new'), written.index('slow'))
        self.assertEqual(['slow', 'fast 0', 'fast 1', 'fast 2'],
                         schedule.claims[0][1])
        self.assertTrue(all(len(keys) <= 4 for _, keys in schedule.claims))
        # every result is written with the lease of the claim it came in
        lease = {key: until for until, keys in schedule.claims
                 for key in keys}
        self.assertEqual(sorted(lease.items()),
                         sorted((key, until)
                                for until, key in schedule.written))
        self.assertGreater(len(set(lease.values())), 1)


    async def test_claims_grow_and_the_last_writes_are_small(self):
        # The first claim of a round is an eighth of check-claim-size, so
        # that checks start soon; each next one may take twice as many.
        # Once a claim finds nothing, the results still to come are
        # written in eighths of check-write-size, alongside the checks in
        # flight, instead of in one batch after the last check.
        schedule = Schedule([(n, self.server.url(f'/ok?{n}'), None)
                             for n in range(1200)])
        runner = gocept.lms.checker.Runner(
            None, settings=gocept.lms.settings.Settings({
                'check-claim-size': 2000, 'check-write-size': 2000,
                'check-stats-file': ''}),
            writer=schedule)
        stats = gocept.lms.checker.Stats()
        with helpers.no_real_dns():
            async with engine.Checker(
                    helpers.settings(concurrency=10)) as checker:
                claimed = await runner.check_site(checker, 'lms', stats)
        self.assertEqual(1200, claimed)
        self.assertEqual(1200, stats.written)
        self.assertEqual([250, 500], [len(keys) for _, keys
                                      in schedule.claims[:2]])
        self.assertEqual(0, len(schedule.claims[-1][1]))
        self.assertLessEqual(max(schedule.batches), 250)
        self.assertEqual(1200, sum(schedule.batches))


if __name__ == '__main__':
    unittest.main()
