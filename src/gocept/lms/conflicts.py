"""Conflict errors and their retries, counted per process.

Every LMS process writes to the one database at the same time as the
others, so a transaction now and then fails with a `ConflictError` (or a
`ReadConflictError`): another process changed an object it read or wrote.
Each such transaction starts over with fresh data after a short random
pause that grows with every attempt (`pause`); none is reported to a
client or lost.

Whoever meets a conflict calls `record(where)`, with `where` naming the
part of the LMS ('web', 'checker', 'notifier', 'sync', ...) and `retried`
saying whether it is tried again or given up. The counts live in the
memory of the process and start at zero when it starts, as Prometheus
counters do. The web process shows its own in `@@metrics`; the checker
publishes its own in the file `checkerstats` writes; the notifier and the
syncer log a summary (`summary`, `log_summary`).
"""

import collections
import logging
import random
import threading
import time


log = logging.getLogger(__name__)

# Attempts of one request or transaction before a conflict is given up
# (the first and 39 retries). With the pauses below, 39 retries take
# between 16.6 and 33.3 seconds in all: enough for a burst of writers that
# all want the same new URLs (the concurrency benchmark's shared pool), on
# two web servers whose inserts all read the URL index's upper nodes as
# current (BTrees' readCurrent), so that a split anywhere below fails the
# others' commits. With 20, one call in a few hundred gave up.
ATTEMPTS = 40

# The pause before retry n (0-based) is between half and all of
# min(PAUSE_MAX, PAUSE_BASE * 2 ** n) seconds: the random part keeps
# transactions that conflicted with each other from meeting again at
# once, the growing part gives a busy database room.
PAUSE_BASE = 0.01
PAUSE_MAX = 1.0

# A summary line in the log at most this often (seconds) while conflicts
# happen.
LOG_INTERVAL = 300.0

_lock = threading.Lock()
_conflicts = collections.Counter()
_retries = collections.Counter()
_last_logged = [time.monotonic()]


def record(where, retried=True):
    """Count one conflict met in `where`; `retried`: it is tried again
    (False: given up, the caller sees the error)."""
    with _lock:
        _conflicts[where] += 1
        if retried:
            _retries[where] += 1
        now = time.monotonic()
        due = now - _last_logged[0] >= LOG_INTERVAL
        if due:
            _last_logged[0] = now
    if not retried:
        log.warning('%s: gave up on a conflict after its last attempt',
                    where)
    if due:
        log_summary()


def counts(where):
    """`{'conflicts': n, 'retries': m}` of `where` in this process."""
    with _lock:
        return {'conflicts': _conflicts[where], 'retries': _retries[where]}


def adopt(where, figures):
    """Take the counts of `where` from `counts()` of another process that
    does that work for this one (the checker's database process)."""
    with _lock:
        _conflicts[where] = figures['conflicts']
        _retries[where] = figures['retries']


def summary():
    """`{where: {'conflicts': n, 'retries': m}}` for every part of this
    process that met a conflict."""
    with _lock:
        return {where: {'conflicts': _conflicts[where],
                        'retries': _retries[where]}
                for where in sorted(_conflicts)}


def log_summary(logger=log):
    """Log one line with the counts of this process (if there are any)."""
    figures = summary()
    if figures:
        logger.info('conflicts since start: %s', ', '.join(
            '%s %d (%d retried)' % (where, c['conflicts'], c['retries'])
            for where, c in figures.items()))


def delay(retry):
    """Seconds to wait before retry number `retry` (0 for the first)."""
    ceiling = min(PAUSE_MAX, PAUSE_BASE * 2 ** min(retry, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def pause(retry):
    """Wait before retry number `retry` (0 for the first); return the
    seconds waited. Call it with no database connection open."""
    seconds = delay(retry)
    time.sleep(seconds)
    return seconds
