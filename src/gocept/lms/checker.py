"""The checker process: takes due URLs, checks them, writes the results.

A round: claim a batch of due URLs from the schedule in one short
transaction (each claimed URL is rescheduled a lease ahead, so a checker
that dies loses only the checks in flight: they come due again when the
lease ends). Check them with `checking.engine`, which holds no database
connection. Write the results back in batches of `check-write-size`, in a
writer thread so that checking goes on meanwhile, each batch one
transaction, retried on ConflictError.
"""

import asyncio
import collections
import concurrent.futures
import logging
import time

from ZODB.POSException import ConflictError

import gocept.lms.checkerstats
import gocept.lms.checking.engine
import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.settings


log = logging.getLogger(__name__)



class Stats:

    def __init__(self):
        self.started = time.monotonic()
        self.states = collections.Counter()
        self.written = 0
        self.dropped = 0
        self.gone = 0

    @property
    def checked(self):
        return sum(self.states.values())

    def __str__(self):
        seconds = time.monotonic() - self.started
        return '%d URLs checked in %.1f s (%.0f/s): %s' % (
            self.checked, seconds, self.checked / seconds if seconds else 0,
            ', '.join('%s %d' % item for item in sorted(self.states.items()))
            or 'nothing due')


class Runner:
    """Checks the due URLs of every LMS site in `db`."""

    def __init__(self, db, settings=None, checker_settings=None,
                 resolver=None, clock=time.time):
        self.db = db
        self.settings = settings or gocept.lms.settings.get()
        self.checker_settings = (
            checker_settings or gocept.lms.settings.checker())
        self.resolver = resolver
        self.clock = clock

    def _in_transaction(self, site_name, work):
        """Run work(site manager) in its own transaction, with retries."""
        return gocept.lms.db.in_transaction(
            self.db, site_name, lambda site: work(site.getSiteManager()),
            where='checker')

    def claim(self, site_name):
        """Claim a batch; return (lease end, [(key, url, history)])."""
        now = self.clock()
        lease = self.settings.check_lease * 60

        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            urls = sm.getUtility(gocept.lms.interfaces.IURLProvider)
            until, keys = schedule.claim(
                now, self.settings.check_claim_size, lease)
            items = list(urls.check_items(keys))
            if len(items) < len(keys):  # an entry without a URL
                for key in set(keys).difference(i[0] for i in items):
                    schedule.release(key, until)
            return until, items
        return self._in_transaction(site_name, work)

    def write(self, site_name, until, results, stats):
        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            urls = sm.getUtility(gocept.lms.interfaces.IURLProvider)
            gone = 0
            for r in results:
                if not urls.record_check(r.key, r.state, r.checked_at,
                                         r.reason, r.history):
                    gone += 1  # removed while it was checked
                    schedule.release(r.key, until)
                    continue
                schedule.reschedule(
                    r.key, until, r.checked_at.timestamp() + r.next_check)
            return gone
        try:
            stats.gone += self._in_transaction(site_name, work)
        except ConflictError as error:
            # Nothing is lost: the URLs come due again when their lease
            # ends, and another round checks them.
            log.warning('%d results not written, conflicts outlasted '
                        'their retries (%s); checked again after the lease',
                        len(results), type(error).__name__)
            stats.dropped += len(results)
        else:
            stats.written += len(results)

    async def check_round(self, checker, site_name, stats):
        """Claim and check one batch; return how many URLs were claimed."""
        loop = asyncio.get_running_loop()
        try:
            until, items = await loop.run_in_executor(
                self.writer, self.claim, site_name)
        except ConflictError as error:
            log.warning('claim given up, conflicts outlasted their retries '
                        '(%s); trying again later', type(error).__name__)
            return 0
        if not items:
            return 0
        pending = []
        writes = []
        size = self.settings.check_write_size
        async for result in checker.check_many(items):
            stats.states[result.state] += 1
            pending.append(result)
            if len(pending) >= size:
                writes.append(loop.run_in_executor(
                    self.writer, self.write, site_name, until, pending,
                    stats))
                pending = []
        if pending:
            writes.append(loop.run_in_executor(
                self.writer, self.write, site_name, until, pending,
                stats))
        await asyncio.gather(*writes)
        return len(items)

    async def run(self, once=False):
        """Check until nothing is due (`once`) or forever."""
        # Claims and writes go through one thread: they block on the
        # database, the checks must not.
        self.writer = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix='lms-writer')
        # Figures for the monitoring views (checkerstats.py); the web
        # server cannot see this process's memory.
        self.published = gocept.lms.checkerstats.CheckerStats(
            self.checker_settings.concurrency)
        try:
            async with gocept.lms.checkerstats.MeasuredChecker(
                    self.published, self.checker_settings,
                    resolver=self.resolver, clock=self.clock) as checker:
                async with gocept.lms.checkerstats.Publisher(
                        self.published, self.settings.check_stats_file):
                    return await self._rounds(checker, once)
        finally:
            self.writer.shutdown()

    async def _rounds(self, checker, once):
        stats = Stats()
        sites = gocept.lms.db.lms_site_names(self.db)
        while True:
            claimed = 0
            for site_name in sites:
                claimed += await self.check_round(checker, site_name, stats)
            if claimed:
                log.info('%s', stats)
            elif once:
                return stats
            else:
                await asyncio.sleep(self.settings.check_poll)
