"""When each URL is checked next, and which URLs are due.

The schedule is ordered by time, so finding due work costs in proportion
to what is due, not to the number of URLs; and it holds exactly one entry
per URL, so it cannot grow while the checker is slow or stopped: overdue
URLs simply wait at the front.

Entries are single 64-bit integers, `(time << KEY_BITS) | key`, in an
LLTreeSet: ordered by time first, compact, compared in C. A second tree
maps each key to its time, to find the entry to move.
"""

import BTrees.LLBTree
import BTrees.Length
import persistent
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.interfaces
from gocept.lms.url import KEY_BITS, MAX_KEY


def _entry(when, key):
    return (int(when) << KEY_BITS) | key


def _split(entry):
    return entry >> KEY_BITS, entry & (MAX_KEY - 1)


@zope.interface.implementer(gocept.lms.interfaces.ISchedule)
class Schedule(zope.container.contained.Contained, persistent.Persistent):

    def __init__(self):
        self._queue = BTrees.LLBTree.LLTreeSet()
        self._when = BTrees.LLBTree.LLBTree()

    def __len__(self):
        return len(self._when)

    def __contains__(self, key):
        return key in self._when

    def next_check(self, key):
        return self._when.get(key)

    def schedule(self, key, when):
        when = int(when)
        old = self._when.get(key)
        if old == when:
            return
        if old is not None:
            self._queue.remove(_entry(old, key))
        self._queue.insert(_entry(when, key))
        self._when[key] = when

    def unschedule(self, key):
        old = self._when.get(key)
        if old is not None:
            self._queue.remove(_entry(old, key))
            del self._when[key]

    def due(self, now, limit=None):
        result = []
        for entry in self._queue.keys(max=_entry(now, MAX_KEY - 1)):
            if limit is not None and len(result) >= limit:
                break
            result.append(_split(entry)[1])
        return result

    def claim(self, now, limit, lease):
        keys = self.due(now, limit)
        for key in keys:
            self.schedule(key, now + lease)
        return keys

    def backlog(self, now):
        count = 0
        for _ in self._queue.keys(max=_entry(now, MAX_KEY - 1)):
            count += 1
        return count


@zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
def schedule_new_urls(event):
    """New URLs are due at once: clients want to see their states soon."""
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.provider)
    for url in event.urls:
        schedule.schedule(url.id, 0)


@zope.component.adapter(gocept.lms.interfaces.IURLRemovedEvent)
def unschedule_removed_url(event):
    schedule = zope.component.getUtility(
        gocept.lms.interfaces.ISchedule, context=event.url)
    schedule.unschedule(event.url.id)
