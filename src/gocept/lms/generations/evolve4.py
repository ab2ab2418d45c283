"""Move every LMS site to the second data model.

The first model kept each URL as one record `(url, state, reason, last
check, last state change, history)` in `_records`, with a string-keyed
index `_ids`; the schedule kept a key -> time map `_when`; each client's
pending changes were an LLBTree. See url.py, schedule.py and merging.py for
the new layout and why. Keys stay as they are, so client subscriptions
(`_clients`, each client's key set) carry over untouched.

Earlier evolve steps call `upgrade_model` first, so they always work on the
new model; on a site that has it already it does nothing.
"""

import logging

import transaction

import gocept.lms.client
import gocept.lms.generations
import gocept.lms.url
from gocept.lms.interfaces import IClientProvider, INotifications
from gocept.lms.interfaces import ISchedule, IURLProvider


log = logging.getLogger(__name__)

# Records moved between savepoints: bounds the memory a million URLs take.
CHUNK = 20000


def evolve(context):
    gocept.lms.generations.each_site(context, upgrade_model)


def upgrade_model(site):
    sm = site.getSiteManager()
    urls = sm.queryUtility(IURLProvider)
    moved = 0 if urls is None else upgrade_urls(urls)
    schedule = sm.queryUtility(ISchedule)
    if schedule is not None:
        upgrade_schedule(schedule, urls)
    clients = sm.queryUtility(IClientProvider)
    for client in (clients.values() if clients is not None else ()):
        upgrade_pending(INotifications(client))
    if moved:
        log.info('%s: %d URLs moved to the second data model',
                 site.__name__, moved)


def upgrade_urls(urls):
    # getattr, not __dict__: the object may be a ghost until it is read.
    records = getattr(urls, '_records', None)
    if records is None:
        return 0
    fresh = gocept.lms.url.URLProvider()
    states = gocept.lms.url.STATE_INDEX
    moved = 0
    for key, (url, state, reason, checked, changed, history) in \
            records.items():
        fresh._urls[key] = url
        fresh._index_string(key, url)
        fresh._info[key] = (
            states[state], reason, _seconds(checked), _seconds(changed),
            None if history is None else tuple(history))
        moved += 1
        if not moved % CHUNK:
            transaction.savepoint(True)
    for name in ('_salt', '_urls', '_index', '_collisions', '_info'):
        setattr(urls, name, getattr(fresh, name))
    del urls._records
    del urls._ids
    return moved


def _seconds(value):
    return None if value is None else int(value)


def upgrade_schedule(schedule, urls):
    when = getattr(schedule, '_when', None)
    if when is None:
        return
    fresh = type(schedule)()
    new = []
    for key, time in when.items():
        url = None if urls is None else urls._urls.get(key)
        if url is None:
            continue  # an entry left behind by a removed URL
        if time == 0:
            new.append((key, url))  # registered, never checked
        else:
            fresh.schedule(key, url, time)
    fresh.add_new(new)
    for name in ('shards', 'workers', '_shard_of', '_new_count', '_slots',
                 '_stale'):
        setattr(schedule, name, getattr(fresh, name))
    del schedule._queue
    del schedule._when


def upgrade_pending(notifications):
    pending = notifications.pending
    if isinstance(pending, gocept.lms.client.PendingChanges):
        return
    fresh = gocept.lms.client.PendingChanges()
    for key, when in pending.items():
        fresh.note(key, when)
    notifications.pending = fresh
