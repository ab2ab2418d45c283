"""Figures of the checker process, published for the monitoring views.

Checks in flight and their latency exist only in the memory of
`bin/checker`; putting them into the ZODB would add a write transaction
every few seconds, conflicting with nothing useful. Instead the checker
rewrites a small JSON file (`check-stats-file`) every few seconds and when
it stops; the web server's `@@metrics` and `@@munin-threadpool` views read
it. The file is replaced atomically (write a sibling, then rename), so a
reader never sees half of it.

The counters (checks, latency histogram, and the conflicts the process
met and retried, from `conflicts`) start at zero when the checker starts,
as Prometheus counters do after a restart.
"""

import asyncio
import collections
import json
import logging
import os
import tempfile
import time

import gocept.lms.checkerdb
import gocept.lms.checking.engine
import gocept.lms.conflicts


log = logging.getLogger(__name__)

# Upper bounds (seconds) of the latency histogram. Most checks take well
# under a second; the long tail is made of slow servers and timeouts
# (30 s by default), which the top buckets separate.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Seconds between two writes of the file while the checker runs. Short
# enough for a 15 s scrape interval to see checks in flight.
PUBLISH_INTERVAL = 5.0

# A file older than this means the checker is not running (it rewrites the
# file every PUBLISH_INTERVAL, also while idle).
STALE_AFTER = 60.0

class CheckerStats:
    """Counts of one checker process."""

    def __init__(self, concurrency, clock=time.time):
        self.concurrency = concurrency
        self.clock = clock
        self.started = clock()
        self.in_flight = 0
        # Per bucket, not cumulative; the last slot is above every bound.
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.seconds = 0.0
        self.states = collections.Counter()

    def observe(self, seconds, state):
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                break
        else:
            i = len(BUCKETS)
        self.buckets[i] += 1
        self.seconds += seconds
        self.states[state] += 1

    def as_dict(self):
        conflicts = gocept.lms.conflicts.counts(
            gocept.lms.checkerdb.CONFLICTS)
        return {
            'pid': os.getpid(),
            'started': self.started,
            'updated': self.clock(),
            'concurrency': self.concurrency,
            'in_flight': self.in_flight,
            'latency': {
                'bounds': list(BUCKETS),
                'counts': list(self.buckets),
                'sum': self.seconds,
            },
            'checks': dict(self.states),
            # ConflictErrors met by this process, and how many of them
            # were retried (the others were given up).
            'conflicts': conflicts['conflicts'],
            'retries': conflicts['retries'],
        }

    def write(self, path):
        """Replace the file at `path` with the current figures."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix='.checker-stats-', suffix='.tmp')
        try:
            with os.fdopen(fd, 'w') as f:
                json.dump(self.as_dict(), f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def read(path):
    """The figures published at `path`, or None if there are none."""
    if not path:
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        # Not there yet (the checker never ran) or unreadable: report
        # nothing rather than fail the whole scrape.
        return None
    return data if isinstance(data, dict) else None


class MeasuredChecker(gocept.lms.checking.engine.Checker):
    """A Checker that counts its checks in flight and times each one."""

    def __init__(self, stats, *args, **kw):
        super().__init__(*args, **kw)
        self.stats = stats

    async def check(self, url, history=None, key=None, ticket=None):
        stats = self.stats
        stats.in_flight += 1
        start = time.monotonic()
        try:
            result = await super().check(url, history, key, ticket)
        finally:
            stats.in_flight -= 1
        stats.observe(time.monotonic() - start, result.state)
        return result


class Publisher:
    """Writes `stats` to `path` periodically while used as an async
    context manager, and once more at its end."""

    def __init__(self, stats, path, interval=PUBLISH_INTERVAL):
        self.stats = stats
        self.path = path
        self.interval = interval
        self._task = None

    def publish(self):
        if not self.path:
            return
        try:
            self.stats.write(self.path)
        except OSError:
            # Monitoring must never stop the checks.
            log.warning('cannot write %s', self.path, exc_info=True)

    async def _loop(self):
        while True:
            self.publish()
            await asyncio.sleep(self.interval)

    async def __aenter__(self):
        if self.path:
            self._task = asyncio.ensure_future(self._loop())
        return self

    async def __aexit__(self, *exc):
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.publish()
