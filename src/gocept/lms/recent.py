"""The latest state changes, for the admins' dashboard.

The change journal (journal.py) holds only the changes the notifier has
not handed out yet, usually none. This keeps the last `LIMIT` changes,
whoever has seen them: one small map, written by the checker's
transactions that change states. Two such transactions at once merge
their notes (a `ChangeMap`, merging.py, whose merge keeps the newest
`LIMIT`), so the map costs the checker no conflicts.
"""

import time

import zope.component
import zope.interface

import gocept.lms.interfaces
import gocept.lms.merging
from gocept.lms.interfaces import STATES


# Changes kept: a screenful, and a map that stays a few kB.
LIMIT = 50

STATE_INDEX = {state: i for i, state in enumerate(STATES)}


def newest(data, limit=LIMIT):
    """The `limit` entries of `data` (key -> (when, before, now)) with the
    latest times."""
    if len(data) <= limit:
        return data
    return dict(sorted(data.items(), key=lambda item: item[1],
                       reverse=True)[:limit])


@zope.interface.implementer(gocept.lms.interfaces.IRecentChanges)
class RecentChanges(gocept.lms.merging.ChangeMap):
    """URL key -> (when in microseconds, state before, state now), the
    states as indexes into STATES. A value is a tuple that starts with
    the time, so the merge's rule, the later change wins, compares
    times."""

    def _p_resolveConflict(self, old, committed, new):
        return newest(super()._p_resolveConflict(old, committed, new))

    def note(self, changes, when=None):
        """See IRecentChanges."""
        when = time.time_ns() // 1000 if when is None else when
        for key, before, now in changes:
            self._data[key] = (when, STATE_INDEX[before], STATE_INDEX[now])
        self._data = newest(self._data)
        self._p_changed = True

    def latest(self):
        """See IRecentChanges."""
        return [(when, key, STATES[before], STATES[now])
                for key, (when, before, now) in sorted(
                    self._data.items(), key=lambda item: item[1],
                    reverse=True)]


@zope.component.adapter(gocept.lms.interfaces.IURLStatesChangedEvent)
def note_state_changes(event):
    recent = zope.component.queryUtility(
        gocept.lms.interfaces.IRecentChanges, context=event.provider)
    if recent is not None:  # None on a site before generation 6
        recent.note((url.id, before, url.state)
                    for url, before in event.changes)
