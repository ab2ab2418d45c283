"""The checker process: takes due URLs, checks them, writes the results.

A round: claim a batch of due URLs from the schedule in one short
transaction (each claimed URL is rescheduled a lease ahead, so a checker
that dies loses only the checks in flight: they come due again when the
lease ends). Check them with `checking.engine`, which holds no database
connection. Write the results back in batches of `check-write-size`, each
batch one transaction, retried on ConflictError, while checking goes on.

The database side (`DatabaseWork`: claims and writes) runs apart from the
checks: in a thread (`ThreadWriter`, for tests and in-process use) or, as
bin/checker runs it, in a process of its own (`ProcessWriter`), so that
pickling and committing results uses the second core instead of taking
turns with the checks for one.
"""

import asyncio
import atexit
import collections
import concurrent.futures
import functools
import logging
import multiprocessing
import os
import signal
import threading
import time

from ZODB.POSException import ConflictError

import gocept.lms.checkerstats
import gocept.lms.checking.engine
import gocept.lms.conflicts
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


class DatabaseWork:
    """The checker's work in the database: claiming and writing."""

    def __init__(self, db, settings=None, clock=time.time):
        self.db = db
        self.settings = settings or gocept.lms.settings.get()
        self.clock = clock

    def _in_transaction(self, site_name, work):
        """Run work(site manager) in its own transaction, with retries."""
        return gocept.lms.db.in_transaction(
            self.db, site_name, lambda site: work(site.getSiteManager()),
            where=gocept.lms.checkerstats.CONFLICTS)

    def site_names(self):
        return gocept.lms.db.lms_site_names(self.db)

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

    def write(self, site_name, until, results):
        """Record `results`; return (written, gone, dropped) counts."""
        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            urls = sm.getUtility(gocept.lms.interfaces.IURLProvider)
            gone = urls.record_checks(
                (r.key, r.state, r.checked_at, r.reason, r.history)
                for r in results)
            for r in results:
                if r.key in gone:  # removed while it was checked
                    schedule.release(r.key, until)
                else:
                    schedule.reschedule(
                        r.key, until,
                        r.checked_at.timestamp() + r.next_check)
            return len(gone)
        try:
            gone = self._in_transaction(site_name, work)
        except ConflictError as error:
            # Nothing is lost: the URLs come due again when their lease
            # ends, and another round checks them.
            log.warning('%d results not written, conflicts outlasted '
                        'their retries (%s); checked again after the lease',
                        len(results), type(error).__name__)
            return 0, 0, len(results)
        return len(results) - gone, gone, 0


class ThreadWriter:
    """Runs the DatabaseWork in one thread: it blocks on the database,
    the checks must not."""

    executor = None

    def __init__(self, database):
        self.database = database

    def start(self):
        return concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix='lms-writer')

    async def call(self, name, *args):
        if self.executor is None:
            self.executor = self.start()
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self.function(name), *args)

    def function(self, name):
        return getattr(self.database, name)

    def shutdown(self):
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None


class ProcessWriter(ThreadWriter):
    """Runs the DatabaseWork in a process of its own, which opens the
    database with `open_database(config_file, quiet=..., bootstrap=False,
    where=...)` (scripts.open_database; passed in, as it is the scripts
    that know how a process opens its database)."""

    def __init__(self, open_database, config_file, quiet=False):
        self.open_database = open_database
        self.config_file = config_file
        self.quiet = quiet

    def start(self):
        # spawn: a fresh interpreter, not a copy of this one with its
        # database connection and threads.
        return concurrent.futures.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context('spawn'),
            initializer=_start_database_work,
            initargs=(self.open_database, self.config_file, self.quiet))

    def function(self, name):
        return functools.partial(_database_work, name)

    async def call(self, name, *args):
        result, conflicts = await super().call(name, *args)
        # The conflicts happen over there; the checker publishes them.
        gocept.lms.conflicts.adopt(gocept.lms.checkerstats.CONFLICTS,
                                   conflicts)
        return result


# The DatabaseWork of a ProcessWriter's process.
_work = None

# How often that process looks whether the checker is still there (s).
PARENT_POLL = 1.0


def _start_database_work(open_database, config_file, quiet):
    """Initializer of the ProcessWriter's process."""
    global _work
    # Ctrl-C reaches the whole process group; the checker process decides
    # when this one ends (it shuts the executor down).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A checker killed outright (SIGKILL, or SIGTERM from a supervisor)
    # cannot shut the executor down, and the queue this process reads
    # would never tell: it goes when its parent goes.
    threading.Thread(target=_follow_parent, args=(os.getppid(),),
                     name='lms-follow-parent', daemon=True).start()
    db = open_database(config_file, quiet=quiet, bootstrap=False,
                       where=gocept.lms.checkerstats.CONFLICTS)
    atexit.register(db.close)
    _work = DatabaseWork(db)


def _follow_parent(parent, poll=PARENT_POLL):
    while os.getppid() == parent:
        time.sleep(poll)
    # The claims in flight come due again when their lease ends.
    os._exit(0)


def _database_work(name, *args):
    """Run DatabaseWork.`name` in the ProcessWriter's process; return the
    result and the conflicts counted there so far."""
    return getattr(_work, name)(*args), gocept.lms.conflicts.counts(
        gocept.lms.checkerstats.CONFLICTS)


class Runner:
    """Checks the due URLs of every LMS site in `db`."""

    def __init__(self, db, settings=None, checker_settings=None,
                 resolver=None, clock=time.time, writer=None):
        self.db = db
        self.settings = settings or gocept.lms.settings.get()
        self.checker_settings = (
            checker_settings or gocept.lms.settings.checker())
        self.resolver = resolver
        self.clock = clock
        self.writer = writer or ThreadWriter(
            DatabaseWork(db, self.settings, clock))

    async def write(self, site_name, until, results, stats):
        written, gone, dropped = await self.writer.call(
            'write', site_name, until, results)
        stats.written += written
        stats.gone += gone
        stats.dropped += dropped

    async def claim(self, site_name):
        try:
            return await self.writer.call('claim', site_name)
        except ConflictError as error:
            log.warning('claim given up, conflicts outlasted their retries '
                        '(%s); trying again later', type(error).__name__)
            return None, []

    async def check_site(self, checker, site_name, stats):
        """Claim and check batches until nothing is due; return how many
        URLs were claimed.

        The database work runs beside the checks: the next batch is
        claimed while this one is checked, and results are written while
        the next ones are checked. At most one round's writes wait at a
        time, so memory stays bounded by two batches.
        """
        claimed = 0
        size = self.settings.check_write_size
        next_claim = asyncio.ensure_future(self.claim(site_name))
        earlier_writes = []
        while True:
            until, items = await next_claim
            if not items:
                break
            claimed += len(items)
            next_claim = asyncio.ensure_future(self.claim(site_name))
            await asyncio.gather(*earlier_writes)
            writes, pending = [], []
            async for result in checker.check_many(items):
                stats.states[result.state] += 1
                pending.append(result)
                if len(pending) >= size:
                    writes.append(asyncio.ensure_future(
                        self.write(site_name, until, pending, stats)))
                    pending = []
            if pending:
                writes.append(asyncio.ensure_future(
                    self.write(site_name, until, pending, stats)))
            earlier_writes = writes
            log.info('%s', stats)
        await asyncio.gather(*earlier_writes)
        return claimed

    async def run(self, once=False):
        """Check until nothing is due (`once`) or forever."""
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
        sites = await self.writer.call('site_names')
        while True:
            claimed = 0
            for site_name in sites:
                claimed += await self.check_site(checker, site_name, stats)
            if not claimed:
                if once:
                    return stats
                await asyncio.sleep(self.settings.check_poll)
