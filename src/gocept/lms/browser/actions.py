"""What admins change from the pages, each in one place."""

import logging

import zope.component

import gocept.lms.mail
from gocept.lms.interfaces import IClientProvider, INotifications
from gocept.lms.interfaces import ISchedule, ISynchronization, IURLProvider


log = logging.getLogger(__name__)


def force_sync(client):
    ISynchronization(client).force = True
    return '%s will be synced at the next run of bin/sync.' % client.id


def notifications_on(client):
    INotifications(client).switch_on()
    return 'Notifications to %s are on again.' % client.id


def unregister(site, client_id):
    """Remove a client and its subscriptions and mail the contact, as the
    API's unregisterClient does."""
    clients = zope.component.getUtility(IClientProvider, context=site)
    gocept.lms.mail.send_removal(clients[client_id])
    clients.remove(client_id)
    log.info('Unregistered client %r in the ZMI', client_id)
    return 'Client %s is unregistered.' % client_id


def check_now(site, keys):
    """Make the URLs `keys` due at once; return how many.

    The schedule keeps no map from key to time (schedule.txt), so the
    entry of a URL cannot be moved: it is marked stale, as for a removed
    URL, and the URL waits with the new ones, which the checker takes
    first. The stale entry is dropped when it comes due, or, if the new
    check's entry comes due first, that one is, and the URL is checked at
    the old time instead: either way one entry is left. A URL marked
    stale already has such a check pending; another mark would leave two
    entries, so it is left alone.
    """
    schedule = zope.component.getUtility(ISchedule, context=site)
    keys = [key for key in keys if not schedule.is_stale(key)]
    for key in keys:
        schedule.unschedule(key)
    urls = zope.component.getUtility(IURLProvider, context=site)
    schedule.add_new((key, url) for key, url, history in
                     urls.check_items(keys))
    return len(keys)
