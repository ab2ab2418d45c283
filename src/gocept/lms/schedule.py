"""When each URL is checked next, and which URLs are due.

schedule.txt tells the story; in short:

* New URLs wait apart from the time order where the checker takes its
  work: registering URLs and claiming due ones write different objects.
  Up to `RECENT` of them wait in a `KeyQueue`, which merges what a client
  adds with what a checker takes at the same time; more (a client's first
  100,000 links, say) go to a BTree set, where such writers may conflict
  and retry.

* Every other URL has one entry in a time-ordered set, the 64-bit integer
  `(time << KEY_BITS) | key`. Finding due work costs what is due; the set
  holds one entry per URL, so it cannot grow while the checker is stopped.

* The checker moves an entry twice: when it claims the URL (to the end of
  a lease) and when it writes the result (to the next check). It knows
  both places, so the schedule needs no map from key to time, which every
  check would rewrite at a random place. Checks finished at about the same
  time land at about the same place: a batch of results writes a few
  buckets, whatever the order of the keys.

* Removing a URL does not search its entry: the key is marked stale, and
  the checker drops the entry when it comes due. Stale keys are not given
  to new URLs until then.

* How many entries fall into each ten-minute slot is counted in a `Tally`,
  so the backlog is a sum over slots instead of a walk over every due
  entry.
"""

import itertools
import time

import BTrees.LLBTree
import BTrees.Length
import persistent
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.interfaces
import gocept.lms.merging
from gocept.lms.url import KEY_BITS, MAX_KEY


# The granularity of the backlog counts, in seconds.
SLOT = 600

# New URLs kept in the merging queue before they go to the BTree set.
RECENT = 2000


def _entry(when, key):
    return (int(when) << KEY_BITS) | key


def _split(entry):
    return entry >> KEY_BITS, entry & (MAX_KEY - 1)


def _slot(when):
    return int(when) // SLOT


class Entries(BTrees.LLBTree.LLTreeSet):
    """The time-ordered entries. A batch of results fills buckets near one
    time, and claims read the front in order: buckets of moderate size,
    and small inner nodes, which splits rewrite."""

    max_leaf_size = 250
    max_internal_size = 64


class NewKeys(BTrees.LLBTree.LLTreeSet):
    """Keys of URLs never checked; small inner nodes, as for Entries."""

    max_internal_size = 64


@zope.interface.implementer(gocept.lms.interfaces.ISchedule)
class Schedule(zope.container.contained.Contained, persistent.Persistent):

    def __init__(self):
        self._recent = gocept.lms.merging.KeyQueue()
        self._new = NewKeys()
        self._new_count = BTrees.Length.Length()
        self._entries = Entries()
        self._slots = gocept.lms.merging.Tally()
        self._stale = BTrees.LLBTree.LLTreeSet()

    def __len__(self):
        """Entries, including those of removed URLs not yet dropped."""
        return self._new_count() + sum(
            count for slot, count in self._slots.items())

    def _insert(self, when, key):
        if self._entries.insert(_entry(when, key)):
            self._slots.change(_slot(when), 1)
            return True
        return False

    def _remove(self, when, key):
        entry = _entry(when, key)
        if entry in self._entries:
            self._entries.remove(entry)
            self._slots.change(_slot(when), -1)
            return True
        return False

    # Writers

    def add_new(self, keys, now=None):
        now = int(time.time() if now is None else now)
        recent = self._recent
        added = 0
        for key in keys:
            if len(recent) < RECENT and key not in self._new:
                added += recent.add(key, now)
            elif key not in recent:
                added += self._new.insert(key)
        self._new_count.change(added)

    def schedule(self, key, when):
        """Give URL `key`, which has no entry yet, its first one."""
        self._insert(when, key)

    def claim(self, now, limit, lease):
        until = int(now + lease)
        keys = self._recent.take(limit)
        if len(keys) < limit:
            more = list(itertools.islice(self._new, limit - len(keys)))
            for key in more:
                self._new.remove(key)
            keys.extend(more)
        self._new_count.change(-len(keys))
        if len(keys) < limit:
            due = list(itertools.islice(
                self._entries.keys(max=_entry(now, MAX_KEY - 1)),
                limit - len(keys)))
            for entry in due:
                when, key = _split(entry)
                self._entries.remove(entry)
                self._slots.change(_slot(when), -1)
                if key in self._stale:
                    self._stale.remove(key)  # its URL is gone
                else:
                    keys.append(key)
        for key in keys:
            self._insert(until, key)
        return until, keys

    def reschedule(self, key, until, when):
        if self._remove(until, key):
            self._insert(when, key)
            return True
        # The lease ran out and another claim moved the entry: whoever
        # holds it now schedules the next check.
        return False

    def release(self, key, until):
        if self._remove(until, key) and key in self._stale:
            self._stale.remove(key)

    def unschedule(self, key):
        if self._recent.discard(key):
            self._new_count.change(-1)
        elif key in self._new:
            self._new.remove(key)
            self._new_count.change(-1)
        else:
            self._stale.insert(key)

    # Readers

    def is_stale(self, key):
        return key in self._stale

    def due(self, now, limit=None):
        keys = list(itertools.islice(
            itertools.chain(self._recent, self._new), limit))
        if limit is None or len(keys) < limit:
            for entry in self._entries.keys(max=_entry(now, MAX_KEY - 1)):
                key = _split(entry)[1]
                if key in self._stale:
                    continue
                keys.append(key)
                if limit is not None and len(keys) >= limit:
                    break
        return keys

    def backlog(self, now):
        current = _slot(now)
        whole = sum(count for slot, count in self._slots.items()
                    if slot < current)
        partial = len(self._entries.keys(
            min=_entry(current * SLOT, 0), max=_entry(now, MAX_KEY - 1)))
        return self._new_count() + whole + partial


@zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
def schedule_new_urls(event):
    """New URLs are due at once: clients want to see their states soon."""
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.provider)
    schedule.add_new(url.id for url in event.urls)


@zope.component.adapter(gocept.lms.interfaces.IURLRemovedEvent)
def unschedule_removed_url(event):
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.url)
    schedule.unschedule(event.url.id)
