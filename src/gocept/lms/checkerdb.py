"""The checker's work in the database: claims and writes.

`DatabaseWork` claims due URLs from the schedule and records the results
of their checks, each call one short transaction with retries. The
checker runs it in a thread (`checker.ThreadWriter`) or, as bin/checker
does, in a process of its own (`checker.ProcessWriter`), whose side is
below: `start_process` opens the database there, `run` calls the work.

That process imports this module and what the model needs, nothing of
the network side: it unpickles claims and `checking.policy.Result`s, and
holds no engine, no aiohttp and no admin pages (its memory is the
database's; see checker.txt).
"""

import atexit
import logging
import os
import signal
import sys
import threading
import time

from ZODB.POSException import ConflictError

import gocept.lms.conflicts
import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.settings
import gocept.lms.shardlease


log = logging.getLogger(__name__)

# Where the checker's conflicts are counted (`conflicts.record`); its
# figures (checkerstats.py) publish them.
CONFLICTS = 'checker'


class DatabaseWork:
    """The checker's work in the database: claiming and writing."""

    def __init__(self, db, settings=None, clock=time.time):
        self.db = db
        self.settings = settings or gocept.lms.settings.get()
        self.clock = clock
        self.leases = {}    # site name -> shardlease.Leases
        self.held = {}      # site name -> numbers of the shards held

    def _in_transaction(self, site_name, work):
        """Run work(site manager) in its own transaction, with retries."""
        return gocept.lms.db.in_transaction(
            self.db, site_name, lambda site: work(site.getSiteManager()),
            where=CONFLICTS)

    def site_names(self):
        return gocept.lms.db.lms_site_names(self.db)

    def renew(self, site_name, name, lease, gap, busy=(), stats=None):
        """Renew this checker's lease of shards of `site_name`'s schedule
        as `name` (shardlease.py), publish `stats`; return the numbers of
        the shards it claims from. `busy`: shards with URLs in flight."""
        leases = self.leases.get(site_name)
        if leases is None:
            leases = self.leases[site_name] = gocept.lms.shardlease.Leases(
                name, lease, gap)
        now = self.clock()

        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            return leases.renew(schedule, now, set(busy), stats)
        held = self.held[site_name] = self._in_transaction(site_name, work)
        return held

    def give_up(self, site_name):
        """Give up the shards of `site_name` and end the lease."""
        leases = self.leases.pop(site_name, None)
        self.held.pop(site_name, None)
        if leases is None:
            return
        now = self.clock()

        def work(sm):
            leases.give_up(
                sm.getUtility(gocept.lms.interfaces.ISchedule), now)
        self._in_transaction(site_name, work)

    def claim(self, site_name, limit=None):
        """Claim up to `limit` URLs (at most `check_claim_size`) from the
        shards this checker leases (every shard if it never renewed a
        lease: a lone checker); return (lease end, [(key, url, history)],
        [shard number of each])."""
        now = self.clock()
        lease = self.settings.check_lease * 60
        size = self.settings.check_claim_size
        limit = size if limit is None else min(limit, size)
        leases = self.leases.get(site_name)

        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            urls = sm.getUtility(gocept.lms.interfaces.IURLProvider)
            shards = None
            if leases is not None:
                shards = leases.claimable(
                    schedule, self.held.get(site_name, ()), now)
            until, placed = schedule.claim_placed(now, limit, lease, shards)
            number = dict(placed)
            items = list(urls.check_items(number))
            if len(items) < len(placed):  # an entry without a URL
                for key in set(number).difference(i[0] for i in items):
                    schedule.release(key, until)
            return until, items, [number[i[0]] for i in items]
        return self._in_transaction(site_name, work)

    def put_back(self, site_name, claimed):
        """Make claimed URLs that were not checked due again now; `claimed`
        is a list of (key, lease end). Returns how many."""
        now = self.clock()

        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            return schedule.reschedule_many(
                (key, until, now, None) for key, until in claimed)
        return self._in_transaction(site_name, work)

    def write(self, site_name, until, results, shards=None):
        """Record `results`; return (written, gone, dropped) counts.

        `until` is the lease end of the claim the results come from, or a
        list with the lease end of each result's claim. `shards`, if
        given, lists the shard number `claim` answered for each result.
        """
        untils = until if isinstance(until, list) else [until] * len(results)
        numbers = shards if shards is not None else [None] * len(results)

        def work(sm):
            schedule = sm.getUtility(gocept.lms.interfaces.ISchedule)
            urls = sm.getUtility(gocept.lms.interfaces.IURLProvider)
            gone = urls.record_checks(
                (r.key, r.state, r.checked_at, r.reason, r.history)
                for r in results)
            for r, lease_end in zip(results, untils):
                if r.key in gone:  # removed while it was checked
                    schedule.release(r.key, lease_end)
            schedule.reschedule_many(
                (r.key, lease_end, r.checked_at.timestamp() + r.next_check,
                 number)
                for r, lease_end, number in zip(results, untils, numbers)
                if r.key not in gone)
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


# The DatabaseWork of this process, when it is bin/checker's database
# process (start_process).
_work = None

# How often that process looks whether the checker is still there (s).
PARENT_POLL = 1.0


def start_process(open_database, config_file, quiet):
    """Initializer of the process of `checker.ProcessWriter`: opens the
    database with `open_database(config_file, quiet=..., bootstrap=False,
    where=...)`."""
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
                       where=CONFLICTS)
    atexit.register(_end, db)
    _work = process_work(db)


def _end(db):
    """The last act of the process when it ends normally: close the
    database and leave. Python's own teardown would then free the
    registries and caches one by one, which took about 0.14 s at every
    stop of the checker and has nothing left to write."""
    db.close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def process_work(db, settings=None):
    """The DatabaseWork of a process that does nothing else: with the
    object cache of `check-database-cache-size` objects."""
    work = DatabaseWork(db, settings)
    db.setCacheSize(work.settings.check_database_cache_size)
    return work


def _follow_parent(parent, poll=PARENT_POLL):
    while os.getppid() == parent:
        time.sleep(poll)
    # The claims in flight come due again when their lease ends.
    os._exit(0)


def run(name, *args):
    """Run DatabaseWork.`name` in the database process (start_process);
    return the result and the conflicts counted there so far."""
    return getattr(_work, name)(*args), gocept.lms.conflicts.counts(
        CONFLICTS)
