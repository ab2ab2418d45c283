"""The checker process: takes due URLs, checks them, writes the results.

A round: claim due URLs from the schedule, a few at a time, each claim
one short transaction (each claimed URL is rescheduled a lease ahead, so a
checker that dies loses only the checks in flight: they come due again
when the lease ends). Check them with `checking.engine`, which holds no
database connection and asks for the next claim whenever its work at hand
runs low: no claimed URL waits for the slowest of a batch, and a URL
registered meanwhile is taken at the next claim. Write the results back
in batches of `check-write-size`, each batch one transaction, retried on
ConflictError, while checking goes on.

The database side (`DatabaseWork`: claims and writes) runs apart from the
checks: in a thread (`ThreadWriter`, for tests and in-process use) or, as
bin/checker runs it, in a process of its own (`ProcessWriter`), so that
pickling and committing results uses the second core instead of taking
turns with the checks for one.
"""

import asyncio
import collections
import contextlib
import concurrent.futures
import functools
import logging
import multiprocessing
import os
import signal
import socket
import time

from ZODB.POSException import ConflictError

import gocept.lms.checkerdb
import gocept.lms.checkerstats
import gocept.lms.conflicts
import gocept.lms.settings


log = logging.getLogger(__name__)


class Stats:
    """What a checker did: checks by state, and the time it was busy (had
    checks in flight), so that its rate is not diluted by idle time."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.started = clock()
        self.states = collections.Counter()
        self.written = 0
        self.dropped = 0
        self.gone = 0
        self.busy = 0.0
        self.rounds = 0

    @property
    def checked(self):
        return sum(self.states.values())

    def __str__(self):
        return '%d URLs checked, %.0f/s in %.1f s busy (%.1f s running): %s' % (
            self.checked, self.checked / self.busy if self.busy else 0,
            self.busy, self.clock() - self.started,
            ', '.join('%s %d' % item for item in sorted(self.states.items()))
            or 'nothing due')


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
            initializer=gocept.lms.checkerdb.start_process,
            initargs=(self.open_database, self.config_file, self.quiet))

    def function(self, name):
        return functools.partial(gocept.lms.checkerdb.run, name)

    async def call(self, name, *args):
        result, conflicts = await super().call(name, *args)
        # The conflicts happen over there; the checker publishes them.
        gocept.lms.conflicts.adopt(gocept.lms.checkerdb.CONFLICTS,
                                   conflicts)
        return result


# Renewals of the shard lease within one lease: two may fail (a slow
# transaction, a conflict) before the lease runs out.
RENEWALS = 3

# The first claim of a round takes up to this share of check_claim_size
# (but FIRST_CLAIM URLs at least), each next one twice as many as the one
# before: the checks start after a small claim instead of a full one, and
# each claim still comes before the engine has checked the one before.
# Once a claim finds nothing, results are written in batches of this
# share of check_write_size: the checks still in flight then overlap
# their writes, and the last batch of a round is a small one.
RAMP = 8
# A claim costs much the same up to about this many URLs: it touches
# every shard the checker holds.
FIRST_CLAIM = 100


class Runner:
    """Checks the due URLs of every LMS site in `db`."""

    def __init__(self, db, settings=None, checker_settings=None,
                 resolver=None, clock=time.time, writer=None, name=None):
        self.db = db
        # Unique among the checkers of a database, also across hosts.
        self.name = name or '%s:%d' % (socket.gethostname(), os.getpid())
        # URLs in flight per (site name, shard): shards they are in are
        # not given up to another checker yet.
        self.busy = collections.Counter()
        self.settings = settings or gocept.lms.settings.get()
        self.checker_settings = (
            checker_settings or gocept.lms.settings.checker())
        self.resolver = resolver
        self.clock = clock
        self.writer = writer or ThreadWriter(
            gocept.lms.checkerdb.DatabaseWork(db, self.settings, clock))
        self.stopping = asyncio.Event()

    async def write(self, site_name, until, results, stats, shards=None):
        written, gone, dropped = await self.writer.call(
            'write', site_name, until, results, shards)
        stats.written += written
        stats.gone += gone
        stats.dropped += dropped

    async def claim(self, site_name, limit=None):
        try:
            return await self.writer.call('claim', site_name, limit)
        except ConflictError as error:
            log.warning('claim given up, conflicts outlasted their retries '
                        '(%s); trying again later', type(error).__name__)
            return None, [], []

    async def check_site(self, checker, site_name, stats):
        """Check the due URLs of `site_name` until none are left; return
        how many URLs were claimed.

        The engine asks for URLs as its work at hand runs low, and at
        least every `check_poll` seconds while it has room: each ask is a
        claim of up to `check_claim_size` URLs (the first ones of fewer,
        see RAMP), and the engine never holds more than that many
        waiting for a work slot. The database work runs beside the
        checks: results are written in batches of `check_write_size`
        while the next ones are checked, or of fewer once the oldest has
        waited `check_write_interval` or once a claim found nothing. A
        batch may hold the results of several claims, so each result is
        written with its own claim's lease. At most two writes wait at a
        time, so memory stays bounded.
        """
        claimed = 0
        leases = {}     # key -> lease end of the claim that brought it
        size = self.settings.check_write_size
        writes = collections.deque()
        ramp = max(min(FIRST_CLAIM, self.settings.check_claim_size),
                   self.settings.check_claim_size // RAMP)

        async def more(room):
            nonlocal claimed, ramp, size
            if self.stopping.is_set():
                return []
            until, items, shards = await self.claim(
                site_name, min(room, ramp))
            ramp = min(2 * ramp, self.settings.check_claim_size)
            size = (self.settings.check_write_size if items else
                    max(1, self.settings.check_write_size // RAMP))
            for item, shard in zip(items, shards):
                if item[0] not in leases:
                    self.busy[site_name, shard] += 1
                leases[item[0]] = until, shard
            claimed += len(items)
            return items

        async def flush(pending):
            untils, results, shards = [], [], []
            for result in pending:
                # A URL claimed twice (it outlasted its lease in the
                # engine and was claimed again) is written once.
                lease = leases.pop(result.key, None)
                if lease is not None:
                    untils.append(lease[0])
                    shards.append(lease[1])
                    results.append(result)
                    self._done(site_name, lease[1])
            if results:
                writes.append(asyncio.ensure_future(
                    self.write(site_name, untils, results, stats, shards)))
            while len(writes) > 2 or writes and writes[0].done():
                await writes.popleft()
            log.info('%s', stats)

        pending = []
        interval = self.settings.check_write_interval
        oldest = None

        async def check():
            nonlocal oldest
            async with contextlib.aclosing(checker.check_many(
                    (), more=more, hold=self.settings.check_claim_size,
                    poll=self.settings.check_poll)) as results:
                async for result in results:
                    stats.states[result.state] += 1
                    if not pending:
                        oldest = time.monotonic()
                    pending.append(result)
                    if (len(pending) >= size
                            or time.monotonic() - oldest >= interval):
                        await flush(pending[:])
                        del pending[:]

        started = time.monotonic()
        checking = asyncio.ensure_future(check())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait([checking, stopping],
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not checking.done():
                # Stopped: the checks in flight are given up.
                checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)
            stats.busy += time.monotonic() - started
            if pending:
                await flush(pending)
            await asyncio.gather(*writes)
        if not checking.cancelled():
            checking.result()  # a failure of the checks ends the checker
        if self.stopping.is_set() and leases:
            put_back = await self.writer.call(
                'put_back', site_name,
                [(key, until) for key, (until, shard) in leases.items()])
            log.info('%d claimed URLs not checked: due again', put_back)
        for until, shard in leases.values():
            self._done(site_name, shard)
        return claimed

    def _done(self, site_name, shard):
        self.busy[site_name, shard] -= 1
        if not self.busy[site_name, shard]:
            del self.busy[site_name, shard]

    async def renew(self, sites):
        """Renew the lease of shards of each site, publishing the figures;
        return how many shards this checker holds."""
        held = 0
        stats = self.published.as_dict()
        for site_name in sites:
            busy = [shard for (site, shard) in self.busy if site == site_name]
            try:
                held += len(await self.writer.call(
                    'renew', site_name, self.name,
                    self.settings.check_shard_lease, self._gap(), busy,
                    stats))
            except ConflictError as error:
                log.warning('lease not renewed, conflicts outlasted their '
                            'retries (%s)', type(error).__name__)
        return held

    def _gap(self):
        """Seconds between the last request of a checker to a host and the
        first of the next that takes the host's shard over."""
        rate = self.checker_settings.per_host_rate
        return 1.0 / rate if rate else 0.0

    async def _renewing(self, sites):
        interval = self.settings.check_shard_lease / RENEWALS
        while True:
            await asyncio.sleep(interval)
            try:
                await self.renew(sites)
            except Exception:
                # The database is away, say. Without a lease the claims
                # stop (shardlease.Leases.claimable); try again.
                log.exception('lease not renewed')

    def stop(self):
        """Stop soon (SIGINT, SIGTERM): no more claims, the checks in
        flight given up, what was checked written, the claimed URLs not
        checked due again. A second signal stops at once."""
        if self.stopping.is_set():
            raise KeyboardInterrupt
        log.info('stopping: writing what was checked')
        self.stopping.set()

    async def run(self, once=False):
        """Check until nothing is due (`once`) or forever, or until
        `stop`."""
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.stop)
                signals.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): `stop` is called
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
            for signum in signals:
                loop.remove_signal_handler(signum)
            self.writer.shutdown()

    async def _rounds(self, checker, once):
        sites = await self.writer.call('site_names')
        await self.renew(sites)
        renewing = asyncio.ensure_future(self._renewing(sites))
        try:
            return await self._checking(checker, once, sites)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            for site_name in sites:
                try:
                    await self.writer.call('give_up', site_name)
                except ConflictError:
                    # The shards are free when the lease ends.
                    log.warning('shards of %s not given up', site_name)

    async def _checking(self, checker, once, sites):
        stats = Stats()
        round_started, round_checked = time.monotonic(), 0
        while not self.stopping.is_set():
            claimed = 0
            for site_name in sites:
                claimed += await self.check_site(checker, site_name, stats)
                if self.stopping.is_set():
                    break
            if claimed:
                continue
            if stats.checked > round_checked:
                # Nothing due any more: a round ends.
                stats.rounds += 1
                log.info('round %d done: %d URLs in %.1f s', stats.rounds,
                         stats.checked - round_checked,
                         time.monotonic() - round_started)
                round_checked = stats.checked
            if once:
                break
            try:
                await asyncio.wait_for(self.stopping.wait(),
                                       self.settings.check_poll)
            except asyncio.TimeoutError:
                pass
            round_started = time.monotonic()
        return stats
