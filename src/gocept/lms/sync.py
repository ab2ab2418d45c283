"""The daily syncer: reconcile each client's URLs with its own database.

sync.txt tells the story; this module holds the mechanics.
"""

import datetime
import logging
import time
import xmlrpc.client

import BTrees.LLBTree
import persistent
import transaction
import zope.annotation
import zope.component
import zope.container.contained
import zope.interface
from ZODB.POSException import ConflictError

import gocept.lms.interfaces
import gocept.lms.settings
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.interfaces import INotifications, ISynchronization


log = logging.getLogger(__name__)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class SyncError(Exception):
    """A client's answer cannot be used."""


# What a client that is down or misbehaves causes; logged without traceback.
EXPECTED_ERRORS = (OSError, SyncError, xmlrpc.client.Error)


@zope.interface.implementer(gocept.lms.interfaces.ISyncResult)
class SyncResult:

    def __init__(self, client_id, fetched=0, added=0, removed=0, notified=0,
                 seconds=0.0):
        self.client_id = client_id
        self.fetched = fetched
        self.added = added
        self.removed = removed
        self.notified = notified
        self.seconds = seconds

    def __str__(self):
        return ('%s: fetched %d, added %d, removed %d, notified %d, '
                '%.1f s' % (self.client_id, self.fetched, self.added,
                            self.removed, self.notified, self.seconds))


@zope.component.adapter(gocept.lms.interfaces.IClient)
@zope.interface.implementer(ISynchronization)
class Synchronization(zope.container.contained.Contained,
                      persistent.Persistent):

    last = None
    force = False
    last_attempt = None
    failures = 0
    last_error = None

    @property
    def client(self):
        return self.__parent__

    def due(self, now):
        if self.force:
            return True
        settings = gocept.lms.settings.get()
        interval = datetime.timedelta(hours=settings.sync_interval)
        if self.failures and self.last_attempt is not None:
            # A client that was down at 02:00 is tried again within the
            # hour, and less often the longer it stays down.
            backoff = datetime.timedelta(
                minutes=settings.sync_retry * 2 ** (self.failures - 1))
            return now >= self.last_attempt + min(backoff, interval)
        return self.last is None or now - self.last >= interval

    def sync(self, now=None):
        now = now or utcnow()
        started = time.monotonic()
        client = self.client
        urls = zope.component.getUtility(IURLProvider)

        remote = client.remote_urls()
        if not isinstance(remote, (list, tuple)):
            raise SyncError('xmlrpc_getAllLinks answered %s, not a list'
                            % type(remote).__name__)
        wanted = urls.add_ids(remote)
        mine = client.url_ids
        to_remove = BTrees.LLBTree.difference(mine, wanted)
        to_add = BTrees.LLBTree.difference(wanted, mine)
        client.unregister_urls([urls.by_id(k) for k in to_remove])
        client.register_urls([urls.by_id(k) for k in to_add])

        notified = client.notify_all()
        # Everything that waited for the notifier went out just now.
        pending = INotifications(client).pending
        for key in list(pending.keys()):
            del pending[key]

        self.last = self.last_attempt = now
        self.force = False
        self.failures = 0
        self.last_error = None
        return SyncResult(
            client.id, fetched=len(remote), added=len(to_add),
            removed=len(to_remove), notified=notified,
            seconds=time.monotonic() - started)

    def record_failure(self, now, error):
        self.last_attempt = now
        self.failures += 1
        self.last_error = describe(error)


synchronization = zope.annotation.factory(
    Synchronization, 'gocept.lms.synchronization')


def describe(error):
    text = '%s: %s' % (type(error).__name__, error)
    return text[:500]


def run(now=None, force_all=False, only=None, attempts=3):
    """Sync every due client of the current site, one transaction each.

    Returns `(results, failures)`: the ISyncResult of each synced client and
    a list of `(client_id, error text)`. ConflictErrors are retried up to
    `attempts` times; any other error fails that client only.
    """
    now = now or utcnow()
    clients = zope.component.getUtility(IClientProvider)
    results, failures = [], []
    for client_id in list(clients.keys()):
        for attempt in range(attempts):
            try:
                result = _sync_one(client_id, now, force_all, only)
            except ConflictError:
                transaction.abort()
                if attempt + 1 == attempts:
                    failures.append((client_id, 'ConflictError, gave up'))
                    log.error('%s: gave up after %d conflicts',
                              client_id, attempts)
                continue
            except Exception as error:
                transaction.abort()
                failures.append((client_id, describe(error)))
                log.error('%s: sync failed: %s', client_id, describe(error),
                          exc_info=not isinstance(error, EXPECTED_ERRORS))
                _record_failure(client_id, now, error)
            else:
                if result is not None:
                    results.append(result)
                    log.info('%s', result)
            break
    return results, failures


def _sync_one(client_id, now, force_all, only):
    client = zope.component.getUtility(IClientProvider).get(client_id)
    if client is None:
        return None  # removed while we were busy with others
    if only is not None and client_id not in only:
        return None
    state = ISynchronization(client)
    if not INotifications(client).enabled:
        if only is not None:
            # Asked for by name: say why nothing happens.
            raise SyncError('notifications are disabled (the client turns '
                            'them on with setClientNotifications)')
        return None
    if not (force_all or only is not None or state.due(now)):
        return None
    result = state.sync(now)
    transaction.commit()
    return result


def _record_failure(client_id, now, error):
    for attempt in range(3):
        try:
            client = zope.component.getUtility(IClientProvider).get(client_id)
            if client is None:
                return
            ISynchronization(client).record_failure(now, error)
            transaction.commit()
            return
        except ConflictError:
            transaction.abort()


def sync(now=None):
    """Sync every due client of the current site (the seed's entry point)."""
    run(now)
