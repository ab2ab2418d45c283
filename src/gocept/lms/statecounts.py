"""How many URLs are in each state, kept up to date as they change.

The site's `IStateCounts` utility holds one counter per state; three
subscribers move the counts when URLs are added, change state or are
removed. The monitoring views (`browser/metrics.py`) and the dashboard
read the counts instead of reading all URL records.
"""

import collections

import BTrees.Length
import persistent
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.interfaces
from gocept.lms.interfaces import IStateCounts, STATES, UNKNOWN


@zope.interface.implementer(IStateCounts)
class StateCounts(zope.container.contained.Contained, persistent.Persistent):
    """One BTrees.Length per state.

    The checker, the API and the syncer change counts from different
    processes at the same time; Length resolves such conflicts by adding
    up the changes, so counting adds no conflict errors.
    """

    def __init__(self):
        self._counts = {state: BTrees.Length.Length() for state in STATES}

    def __getitem__(self, state):
        length = self._counts.get(state)
        return 0 if length is None else length()

    def counts(self):
        return {state: self[state] for state in STATES}

    def change(self, state, delta):
        length = self._counts.get(state)
        if length is None:
            # Not one of STATES; update_check refuses those, so only a
            # state added in a later version gets here.
            length = self._counts[state] = BTrees.Length.Length()
            self._p_changed = True
        length.change(delta)

    def recount(self, urls):
        import gocept.lms.url
        found = dict.fromkeys(self._counts, 0)
        for record in urls._info.values():
            state = STATES[record[gocept.lms.url.STATE]]
            found[state] = found.get(state, 0) + 1
        for state, count in found.items():
            if state not in self._counts:
                self._counts[state] = BTrees.Length.Length()
                self._p_changed = True
            self._counts[state].set(count)


def _counts(context):
    return zope.component.queryUtility(IStateCounts, context=context)


@zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
def count_added(event):
    counts = _counts(event.provider)
    if counts is not None:  # a site not yet evolved to generation 3
        counts.change(UNKNOWN, len(event.urls))


@zope.component.adapter(gocept.lms.interfaces.IURLStatesChangedEvent)
def count_state_changes(event):
    counts = _counts(event.provider)
    if counts is None:
        return
    deltas = collections.Counter()
    for url, old_state in event.changes:
        deltas[old_state] -= 1
        deltas[url.state] += 1
    for state, delta in deltas.items():
        if delta:
            counts.change(state, delta)


@zope.component.adapter(gocept.lms.interfaces.IURLsRemovedEvent)
def count_removed(event):
    counts = _counts(event.provider)
    if counts is None:
        return
    for state, removed in collections.Counter(
            state for _, state, _ in event.removed).items():
        counts.change(state, -removed)
