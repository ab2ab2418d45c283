"""When each URL is checked next, and which URLs are due.

schedule.txt tells the story; in short:

* The schedule is cut into shards (`SHARDS`) by a stable hash of each
  URL's host (`shard_of`): all URLs of one host are in one shard.
  Checkers lease whole shards (shardlease.py): one checker serves a host,
  so the host's rate holds across checkers, and two checkers claim from
  and write to different objects. A map from key to shard lets results
  and removals find a URL's shard by its key.

* New URLs wait apart from the time order where the checker takes its
  work: registering URLs and claiming due ones write different objects.
  Up to `RECENT` of them per shard wait in a `KeyQueue`, which merges
  what a client adds with what a checker takes at the same time; more (a
  client's first 100,000 links, say) go to a BTree set, where such
  writers may conflict and retry.

* Every other URL has one entry in its shard's time-ordered set, the
  64-bit integer `(time << KEY_BITS) | key`. Finding due work costs what
  is due; the set holds one entry per URL, so it cannot grow while the
  checkers are stopped.

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

import heapq
import itertools
import random
import time
import zlib

import BTrees.IIBTree
import BTrees.LLBTree
import BTrees.Length
import BTrees.OOBTree
import persistent
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.checking.hosts
import gocept.lms.interfaces
import gocept.lms.merging
import gocept.lms.prefetch
from gocept.lms.url import KEY_BITS, MAX_KEY


# The granularity of the backlog counts, in seconds.
SLOT = 600

# Shards of a new schedule. Enough for a few dozen checkers to share the
# work evenly; each claim looks at every shard its checker holds.
SHARDS = 64

# New URLs kept in a shard's merging queue before they go to its BTree set.
RECENT = 200


def _entry(when, key):
    return (int(when) << KEY_BITS) | key


def _split(entry):
    return entry >> KEY_BITS, entry & (MAX_KEY - 1)


def _slot(when):
    return int(when) // SLOT


def shard_of(url, shards=SHARDS):
    """The shard of the URL string `url`: a hash of its host that stays
    the same across processes and restarts (Python's `hash` does not)."""
    host = gocept.lms.checking.hosts.host_or_domain(url)
    return zlib.crc32(host.encode('utf-8', 'surrogatepass')) % shards


class Entries(BTrees.LLBTree.LLTreeSet):
    """The time-ordered entries. A batch of results fills buckets near one
    time, and claims read the front in order. But a batch of results, or
    a claim, is spread over every shard the checker holds: 1,000 results
    over 64 shards move about 16 entries in each, which rewrites two or
    three buckets there and, with every split, their parent. So buckets
    and inner nodes are small. At 1M URLs, with buckets of 250 and nodes
    of 64, a result that changed nothing wrote 273-278 bytes of schedule
    and its claim 127-130 more; with these, 162-163 and 87-90, at the
    same rate (benchmarks/RESULTS.md). Older trees take these sizes as
    their buckets split and empty, within a day of checks."""

    max_leaf_size = 100
    max_internal_size = 16


class NewKeys(BTrees.LLBTree.LLTreeSet):
    """Keys of URLs never checked; small inner nodes, as for Entries."""

    max_internal_size = 64


class ShardOf(BTrees.IIBTree.IIBTree):
    """URL key -> its shard. Every new URL writes an entry, from every web
    process and the syncer at once, near the other keys of its writer's
    key block: moderate buckets, and small inner nodes, which splits
    rewrite and every insert reads as current (BTrees' readCurrent), so
    that writers meet in one inner node rarely. With IIBTree's inner
    nodes of 500 children, one root took every split and concurrent
    registrations failed on it after all their attempts."""

    max_leaf_size = 60
    max_internal_size = 32


class Shard(persistent.Persistent):
    """The URLs of the hosts that hash to `number`.

    The object itself holds who leases it (shardlease.py); the claims and
    results of its checker write the sets below it. So a change of owner
    writes this object, and a claim that read the old owner fails to
    commit (claims ask ZODB to check that what they read is current).
    """

    # The name of the checker that leases the shard, or None.
    owner = None
    # When and by whom the shard was last given up (see shardlease.py).
    released = 0.0
    released_by = None

    def __init__(self, number):
        self.number = number
        self.recent = gocept.lms.merging.KeyQueue()
        self.new = NewKeys()
        self.entries = Entries()


@zope.interface.implementer(gocept.lms.interfaces.ISchedule)
class Schedule(zope.container.contained.Contained, persistent.Persistent):

    def __init__(self, shards=SHARDS):
        self.shards = tuple(Shard(number) for number in range(shards))
        # The checkers that lease shards, by name (shardlease.Worker).
        self.workers = BTrees.OOBTree.OOBTree()
        self._shard_of = ShardOf()
        self._new_count = BTrees.Length.Length()
        self._slots = gocept.lms.merging.Tally()
        self._stale = BTrees.LLBTree.LLTreeSet()

    def __len__(self):
        """Entries, including those of removed URLs not yet dropped."""
        return self._new_count() + sum(
            count for slot, count in self._slots.items())

    def shard(self, key):
        """The Shard URL `key` was placed in, or None."""
        number = self._shard_of.get(key)
        return None if number is None else self.shards[number]

    def _place(self, key, url, number=None):
        if number is None:
            number = shard_of(url, len(self.shards))
        if self._shard_of.get(key) != number:
            self._shard_of[key] = number
        return self.shards[number]

    def _insert(self, shard, when, key):
        if shard.entries.insert(_entry(when, key)):
            self._slots.change(_slot(when), 1)
            return True
        return False

    def _remove(self, shard, when, key):
        entry = _entry(when, key)
        if entry in shard.entries:
            shard.entries.remove(entry)
            self._slots.change(_slot(when), -1)
            return True
        return False

    def _count_new(self, delta):
        if delta:  # a Length written for nothing would still be a write
            self._new_count.change(delta)

    # Writers

    def add_new(self, urls, now=None):
        now = int(time.time() if now is None else now)
        shards = len(self.shards)
        placed = [(key, url, shard_of(url, shards)) for key, url in urls]
        if len(placed) > 1:
            self._prefetch_shards(
                [(key, number) for key, _, number in placed],
                [(self._shard_of, [key for key, _, _ in placed])])
        added = 0
        for key, url, number in placed:
            shard = self._place(key, url, number)
            if len(shard.recent) < RECENT and key not in shard.new:
                added += shard.recent.add(key, now)
            elif key not in shard.recent:
                added += shard.new.insert(key)
        self._count_new(added)

    def _prefetch_shards(self, placed, trees):
        """Fetch the shards of the `(key, shard number)` pairs of
        `placed`, their queues and the parts of their sets of new keys
        that hold the keys, with the `(tree, keys)` pairs of `trees`: all
        together, for add_new and unschedule_many."""
        by_shard = {}
        for key, number in placed:
            by_shard.setdefault(number, []).append(key)
        shards = [self.shards[number] for number in by_shard]
        gocept.lms.prefetch.prefetch(shards)
        gocept.lms.prefetch.prefetch([shard.recent for shard in shards])
        gocept.lms.prefetch.prefetch_trees(
            list(trees) + [(shard.new, keys)
                           for shard, keys in zip(shards, by_shard.values())])

    def schedule(self, key, url, when):
        self._insert(self._place(key, url), when, key)

    def claim(self, now, limit, lease, shards=None):
        until, placed = self.claim_placed(now, limit, lease, shards)
        return until, [key for key, number in placed]

    def claim_placed(self, now, limit, lease, shards=None):
        until = int(now + lease)
        chosen = [self.shards[number] for number in shards] if (
            shards is not None) else list(self.shards)
        placed = []
        if not chosen:
            return until, placed
        # Each shard gets its part of the claim, so that one shard's
        # backlog does not crowd out the others; what they leave over is
        # taken in a second pass. The first shard varies from claim to
        # claim, so that the rounding favours none.
        start = random.randrange(len(chosen))
        chosen = chosen[start:] + chosen[:start]
        self._prefetch_fronts(chosen)
        for fair in (True, False):
            for i, shard in enumerate(chosen):
                room = limit - len(placed)
                if room <= 0:
                    return until, placed
                if fair:
                    room = -(-room // (len(chosen) - i))
                placed.extend((key, shard.number) for key in
                              self._take(shard, now, room, until))
        return until, placed

    def _prefetch_fronts(self, shards):
        """Fetch what a claim reads first in each of `shards` together:
        the shard, its queue, and the first buckets of its sets of new
        keys and of entries. A claim looks at every shard its checker
        holds; a fresh process, or one whose queues the web processes
        changed, would load them one after another."""
        gocept.lms.prefetch.prefetch(shards)
        gocept.lms.prefetch.prefetch([shard.recent for shard in shards])
        gocept.lms.prefetch.prefetch_trees(
            [(shard.new, [0]) for shard in shards]
            + [(shard.entries, [0]) for shard in shards])

    def _take(self, shard, now, limit, until):
        keys = shard.recent.take(limit)
        if len(keys) < limit:
            more = list(itertools.islice(shard.new, limit - len(keys)))
            for key in more:
                shard.new.remove(key)
            keys.extend(more)
        self._count_new(-len(keys))
        if len(keys) < limit:
            due = list(itertools.islice(
                shard.entries.keys(max=_entry(now, MAX_KEY - 1)),
                limit - len(keys)))
            for entry in due:
                when, key = _split(entry)
                shard.entries.remove(entry)
                self._slots.change(_slot(when), -1)
                if key in self._stale:
                    self._stale.remove(key)  # its URL is gone
                else:
                    keys.append(key)
        for key in keys:
            self._insert(shard, until, key)
        return keys

    def reschedule(self, key, until, when):
        return self.reschedule_many([(key, until, when, None)]) == 1

    def reschedule_many(self, moves):
        """reschedule() each `(key, until, when, shard number)` of `moves`,
        what that reads fetched from the storage together first; how many
        moved. The shard number comes from the claim (`claim_placed`), or
        is None: then the schedule looks it up."""
        moves = list(moves)
        unplaced = [key for key, _, _, number in moves if number is None]
        if len(unplaced) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_keys(self._shard_of, unplaced)
        moves = [(key, until, when,
                  self._shard_of.get(key) if number is None else number)
                 for key, until, when, number in moves]
        if len(moves) >= gocept.lms.prefetch.PREFETCH_FROM:
            entries = {}
            for key, until, when, number in moves:
                if number is not None:
                    entries.setdefault(number, []).extend(
                        (_entry(until, key), _entry(when, key)))
            shards = [self.shards[number] for number in entries]
            gocept.lms.prefetch.prefetch(shards + [self._slots])
            gocept.lms.prefetch.prefetch_trees(
                [(shard.entries, wanted)
                 for shard, wanted in zip(shards, entries.values())])
        moved = 0
        for key, until, when, number in moves:
            # No entry at `until`: the lease ran out and another claim
            # moved it, and whoever holds it now schedules the next check.
            # So does a number from a claim made before the shards were
            # laid out anew: the URL comes due when its lease ends.
            if number is not None and number < len(self.shards):
                shard = self.shards[number]
                if self._remove(shard, until, key):
                    self._insert(shard, when, key)
                    moved += 1
        return moved

    def release(self, key, until):
        shard = self.shard(key)
        if (shard is not None and self._remove(shard, until, key)
                and key in self._stale):
            self._stale.remove(key)

    def unschedule(self, key):
        self.unschedule_many([key])

    def unschedule_many(self, keys):
        """unschedule() each of `keys`, what that reads fetched from the
        storage together first."""
        keys = list(keys)
        if len(keys) > 1:
            gocept.lms.prefetch.prefetch_keys(self._shard_of, keys)
            numbers = [(key, self._shard_of.get(key)) for key in keys]
            self._prefetch_shards(
                [(key, number) for key, number in numbers
                 if number is not None],
                [(self._stale, keys)])
        dropped = 0
        for key in keys:
            shard = self.shard(key)
            if shard is None:
                continue  # never scheduled: no entry to drop
            if shard.recent.discard(key):
                dropped += 1
            elif key in shard.new:
                shard.new.remove(key)
                dropped += 1
            else:
                self._stale.insert(key)
        self._count_new(-dropped)

    # Readers

    def is_stale(self, key):
        return key in self._stale

    def due(self, now, limit=None):
        new = itertools.chain.from_iterable(
            itertools.chain(shard.recent, shard.new) for shard in self.shards)
        keys = list(itertools.islice(new, limit))
        if limit is None or len(keys) < limit:
            entries = heapq.merge(*(
                shard.entries.keys(max=_entry(now, MAX_KEY - 1))
                for shard in self.shards))
            for entry in entries:
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
        low, high = _entry(current * SLOT, 0), _entry(now, MAX_KEY - 1)
        partial = sum(len(shard.entries.keys(min=low, max=high))
                      for shard in self.shards)
        return self._new_count() + whole + partial


@zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
def schedule_new_urls(event):
    """New URLs are due at once: clients want to see their states soon."""
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.provider)
    schedule.add_new((url.id, url.url) for url in event.urls)


@zope.component.adapter(gocept.lms.interfaces.IURLsRemovedEvent)
def unschedule_removed_urls(event):
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.provider)
    schedule.unschedule_many(url.id for url, _, _ in event.removed)
