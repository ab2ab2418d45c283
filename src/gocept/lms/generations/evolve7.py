"""Cut every LMS site's schedule into shards by host (schedule.py).

Checkers lease shards from now on (shardlease.py). The URLs waiting as
new and the time-ordered entries move into the shard of their URL's host,
each entry at its time; the slot counts stay as they are. Entries of
removed URLs (stale keys) are dropped on the way, as a claim would drop
them. Every URL string is read once, with savepoints in between, so a
million URLs take bounded memory.
"""

import itertools
import logging

import BTrees.OOBTree
import transaction

import gocept.lms.generations
import gocept.lms.schedule
from gocept.lms.interfaces import ISchedule, IURLProvider


log = logging.getLogger(__name__)

# Entries moved between savepoints.
CHUNK = 20000


def evolve(context):
    for site in gocept.lms.generations.lms_sites(context):
        shard_schedule(site)


def shard_schedule(site):
    """Move the site's schedule to shards; False if it has them already."""
    sm = site.getSiteManager()
    schedule = sm.queryUtility(ISchedule)
    urls = sm.queryUtility(IURLProvider)
    # getattr, not __dict__: the object may be a ghost until it is read.
    if schedule is None or getattr(schedule, '_entries', None) is None:
        return False
    recent, new, entries = schedule._recent, schedule._new, schedule._entries
    count = gocept.lms.schedule.SHARDS
    schedule.shards = tuple(
        gocept.lms.schedule.Shard(number) for number in range(count))
    schedule.workers = BTrees.OOBTree.OOBTree()
    schedule._shard_of = gocept.lms.schedule.ShardOf()

    waiting = list(recent.keys()) + list(new)
    schedule._new_count.set(0)
    schedule.add_new(_with_urls(urls, waiting))

    moved = dropped = 0
    old = iter(entries)
    while True:
        chunk = list(itertools.islice(old, CHUNK))
        if not chunk:
            break
        split = dict(
            (gocept.lms.schedule._split(entry)[1], entry) for entry in chunk)
        found = dict(_with_urls(urls, sorted(split)))
        for key, entry in split.items():
            url = found.get(key)
            if url is None:
                # The URL is gone; only its stale mark kept the entry.
                when = gocept.lms.schedule._split(entry)[0]
                schedule._slots.change(gocept.lms.schedule._slot(when), -1)
                if key in schedule._stale:
                    schedule._stale.remove(key)
                dropped += 1
                continue
            number = gocept.lms.schedule.shard_of(url, count)
            schedule._shard_of[key] = number
            schedule.shards[number].entries.insert(entry)
            moved += 1
        transaction.savepoint(True)
    del schedule._recent, schedule._new, schedule._entries
    log.info('%s: schedule cut into %d shards (%d new URLs, %d entries, '
             '%d entries of removed URLs dropped)', site.__name__, count,
             len(waiting), moved, dropped)
    return True


def _with_urls(urls, keys):
    """`(key, url)` of the keys whose URL is still there."""
    if urls is None:
        return []
    return [(key, url) for key, url, history in urls.check_items(keys)]
