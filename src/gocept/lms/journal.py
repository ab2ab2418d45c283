"""The change journal: state changes on their way to the clients.

The checker does not write the clients' pending maps. A batch of results
that changes states appends one entry to the journal, the keys of the URLs
whose state changed, and that is all it writes for the clients. The
notifier hands the entries out (`distribute`): it reads who subscribes to
each URL, notes the changes in those clients' pending maps, one write per
client for many changes, and deletes the entries it handed out.

journal.txt tells the story.
"""

import random
import time

import BTrees.LOBTree
import BTrees.Length
import persistent
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.interfaces
from gocept.lms.interfaces import IChangeJournal, INotifications


class Entries(BTrees.LOBTree.LOBTree):
    """entry id -> (change time in microseconds, tuple of URL keys).

    Entries are appended at the end and taken from the front: buckets
    merge an append with a removal further on, and with another append."""

    max_leaf_size = 30
    max_internal_size = 32


# Entry ids are the change time in microseconds times ID_SPREAD plus a
# random part: two checkers that write in the same microsecond rarely meet,
# and when they do, the conflict is retried like any other.
ID_SPREAD = 1024


@zope.interface.implementer(IChangeJournal)
class ChangeJournal(zope.container.contained.Contained,
                    persistent.Persistent):

    def __init__(self):
        self._entries = Entries()
        self._waiting = BTrees.Length.Length()

    def __len__(self):
        return self._waiting()

    def record(self, keys, when=None):
        """See IChangeJournal."""
        keys = tuple(keys)
        if not keys:
            return
        when = time.time_ns() // 1000 if when is None else when
        while True:
            entry = when * ID_SPREAD + random.randrange(ID_SPREAD)
            if entry not in self._entries:
                break
        self._entries[entry] = (when, keys)
        self._waiting.change(len(keys))

    # The newest entry handed out, kept in the tree (see `take`).
    _kept = None

    def take(self, limit):
        """See IChangeJournal."""
        taken, done, count = [], [], 0
        newest = self._entries.maxKey() if self._entries else None
        for entry, (when, keys) in self._entries.items():
            if count >= limit:
                break
            if entry != self._kept:
                taken.append((when, keys))
                count += len(keys)
            done.append(entry)
        for entry in done:
            if entry == newest:
                # Deleting it might empty the bucket that checkers append
                # to, which BTrees cannot merge with their appends: it
                # stays until a newer entry is there.
                self._kept = entry
            else:
                del self._entries[entry]
        self._waiting.change(-count)
        return taken

    def pending(self):
        """See IChangeJournal."""
        return [(when, keys) for entry, (when, keys) in self._entries.items()
                if entry != self._kept]


@zope.component.adapter(gocept.lms.interfaces.IURLStatesChangedEvent)
def record_state_changes(event):
    """Journal the URLs whose state changed, for every subscribed client."""
    journal = zope.component.queryUtility(IChangeJournal,
                                          context=event.provider)
    if journal is not None:
        journal.record(url.id for url, old_state in event.changes)


# How many changed URLs one hand-out transaction takes at most (more if
# one entry holds more): what a conflict costs to redo.
STEP = 5000


def distribute(journal, urls, clients, limit=STEP):
    """Hand the oldest journal entries to the clients' pending maps.

    Each changed URL goes to the pending map of every client subscribed to
    it now, with the time of the change; a client that unsubscribed in
    between gets nothing. Returns the number of URL keys handed out; the
    caller commits, and calls again until it gets 0. Entries are taken in
    the same transaction: if it fails, they are still there.
    """
    taken = journal.take(limit)
    when_changed = {}
    for when, keys in taken:
        for key in keys:
            when_changed[key] = max(when, when_changed.get(key, when))
    per_client = {}
    for key, subscribers in urls.subscribers(when_changed):
        for client_id in subscribers:
            per_client.setdefault(client_id, {})[key] = when_changed[key]
    for client_id, changes in per_client.items():
        client = clients.get(client_id)
        if client is not None:
            pending = INotifications(client).pending
            for key, when in sorted(changes.items()):
                pending.note(key, when)
    return sum(len(keys) for when, keys in taken)
