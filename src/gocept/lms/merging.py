"""Persistent maps that merge concurrent changes instead of conflicting.

Several processes write some of the LMS's small bookkeeping objects at the
same time: the checker records that a URL changed while the notifier
removes what it has just pushed; two checkers move entries of the schedule
between the same time slots. A plain persistent object would make the later
of two such transactions fail with a ConflictError and start over. These
classes tell ZODB how to merge instead (`_p_resolveConflict`), each with a
rule that has a meaning for what it holds:

`ChangeMap`   key -> time of the latest change. Of two concurrent changes
              of one key the later one wins, and a change wins over a
              concurrent removal: nothing that happened is forgotten.
`Tally`       key -> count. Concurrent changes add up, as BTrees.Length
              does for a single number.
`KeyQueue`    keys waiting to be taken. Concurrent additions and takings
              merge; two transactions that take the same key conflict, so
              a key is taken once.

Both hold their data in one dict, so they are for maps of bounded size.
merging.txt shows them with two connections.
"""

import itertools

import persistent
import ZODB.POSException


_MISSING = object()


def merge_changes(old, committed, new, both_changed):
    """Three-way merge of dicts, key by key.

    `old` is what both transactions started from. A key one side left
    alone takes the other side's value (or absence); for a key both
    changed, `both_changed(key, mine, theirs)` decides (either may be
    _MISSING: removed).
    """
    merged = dict(committed)
    for key in set(old) | set(new):
        before = old.get(key, _MISSING)
        mine = new.get(key, _MISSING)
        if mine == before:
            continue  # this transaction left the key alone
        theirs = committed.get(key, _MISSING)
        value = mine if theirs == before else both_changed(key, mine, theirs)
        if value is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _later(key, mine, theirs):
    # A change beats a removal; of two changes the later one wins.
    if mine is _MISSING or theirs is _MISSING:
        return theirs if mine is _MISSING else mine
    return max(mine, theirs)


def _once(key, mine, theirs):
    if mine is not _MISSING and theirs is not _MISSING:
        return min(mine, theirs)  # added by both: once
    raise ZODB.POSException.ConflictError(
        'key %r taken or changed by two transactions' % (key,))


def merge_latest(old, committed, new):
    """key -> time maps: the later change wins, a change beats a removal."""
    return merge_changes(old, committed, new, _later)


def merge_taken_once(old, committed, new):
    """key -> time queues: additions and removals of different keys merge;
    a key both sides removed raises ConflictError."""
    return merge_changes(old, committed, new, _once)


def merge_sum(old, committed, new):
    """Three-way merge of key -> count maps: the changes add up."""
    merged = dict(committed)
    for key in set(old) | set(new):
        delta = new.get(key, 0) - old.get(key, 0)
        if delta:
            merged[key] = merged.get(key, 0) + delta
    return {key: count for key, count in merged.items() if count}


class _MergingMap(persistent.Persistent):
    """A persistent dict whose state is only that dict."""

    _merge = None  # set by subclasses

    def __init__(self):
        self._data = {}

    def __getstate__(self):
        return self._data

    def __setstate__(self, state):
        self._data = state

    def _p_resolveConflict(self, old, committed, new):
        return type(self)._merge(old or {}, committed or {}, new or {})

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return iter(sorted(self._data))

    def __contains__(self, key):
        return key in self._data

    def get(self, key, default=None):
        return self._data.get(key, default)

    def __getitem__(self, key):
        return self._data[key]

    def items(self):
        return sorted(self._data.items())

    def keys(self):
        return sorted(self._data)


class ChangeMap(_MergingMap):
    """Key -> time of its latest change; concurrent changes merge."""

    _merge = staticmethod(merge_latest)

    def __setitem__(self, key, when):
        self._data[key] = when
        self._p_changed = True

    def __delitem__(self, key):
        del self._data[key]
        self._p_changed = True

    def update(self, items):
        self._data.update(items)
        self._p_changed = True

    def remove_unchanged(self, snapshot):
        """Remove each key whose time is still the one in `snapshot` (a
        dict read earlier); keys changed since then stay. Returns the
        number removed."""
        removed = 0
        for key, when in snapshot.items():
            if self._data.get(key, _MISSING) == when:
                del self._data[key]
                removed += 1
        if removed:
            self._p_changed = True
        return removed


class Tally(_MergingMap):
    """Key -> count; concurrent changes add up. Zero counts vanish."""

    _merge = staticmethod(merge_sum)

    def __getitem__(self, key):
        return self._data.get(key, 0)

    def change(self, key, delta):
        if not delta:
            return
        count = self._data.get(key, 0) + delta
        if count:
            self._data[key] = count
        else:
            self._data.pop(key, None)
        self._p_changed = True


class KeyQueue(_MergingMap):
    """Keys waiting to be taken, oldest first, with the time they came."""

    _merge = staticmethod(merge_taken_once)

    def __iter__(self):
        return iter(self._data)

    def keys(self):
        return list(self._data)

    def add(self, key, when):
        """Add `key` unless it waits already; return whether it was added."""
        if key in self._data:
            return False
        self._data[key] = when
        self._p_changed = True
        return True

    def take(self, limit):
        """Remove and return up to `limit` keys, oldest first."""
        keys = list(itertools.islice(self._data, limit))
        for key in keys:
            del self._data[key]
        if keys:
            self._p_changed = True
        return keys

    def discard(self, key):
        if self._data.pop(key, _MISSING) is not _MISSING:
            self._p_changed = True
            return True
        return False
