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

import gocept.lms.backoff
import gocept.lms.callback
import gocept.lms.clientfigures
import gocept.lms.clock
import gocept.lms.db
import gocept.lms.failures
import gocept.lms.interfaces
import gocept.lms.notify
import gocept.lms.prefetch
import gocept.lms.settings
import gocept.lms.syncwindow
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.interfaces import INotifications, ISynchronization


log = logging.getLogger(__name__)


class SyncError(Exception):
    """A client's answer cannot be used."""


# What a client that is down or misbehaves causes, and conflicts that
# outlasted their retries; logged without traceback.
EXPECTED_ERRORS = (OSError, SyncError, xmlrpc.client.Error, ConflictError)


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
class Synchronization(gocept.lms.clientfigures.Noted,
                      zope.container.contained.Contained,
                      persistent.Persistent):

    figures_part = gocept.lms.clientfigures.SYNC

    last = None
    force = False
    last_attempt = None
    failures = 0
    last_error = None
    touched = None  # open while a sync runs (syncwindow.py)

    @property
    def client(self):
        return self.__parent__

    def due(self, now, settings):
        if self.force:
            return True
        interval = datetime.timedelta(hours=settings.sync_interval)
        if self.last_attempt is not None:
            if (INotifications(self.client).disabled_by
                    == gocept.lms.interfaces.DISABLED_BY_LMS):
                # The notifier gave up on the client: once a day its sync
                # is the try whether it is back.
                return now >= self.last_attempt + interval
            if self.failures:
                # A client that was down at 02:00 is tried again within
                # the hour, and less often the longer it stays down.
                return now >= self.last_attempt + gocept.lms.backoff.backoff(
                    self.failures,
                    datetime.timedelta(minutes=settings.sync_retry),
                    interval)
        return self.last is None or now - self.last >= interval

    def sync(self, settings, now=None):
        """See ISynchronization: sync this client at once, in steps."""
        return ClientSync(self.client.id, now or gocept.lms.clock.utcnow(),
                          settings).run()

    def record_failure(self, now, error):
        gocept.lms.syncwindow.end(self.client)
        self.last_attempt = now
        self.failures += 1
        self.last_error = gocept.lms.failures.describe(error)


# The annotation key (monitoring prefetches the states by it).
SYNCHRONIZATION_KEY = 'gocept.lms.synchronization'
synchronization = zope.annotation.factory(
    Synchronization, SYNCHRONIZATION_KEY)


# How many URLs one reconciling transaction handles: what a conflict
# costs to redo, and what the transaction holds in memory.
STEP = 1000
# The fewest a step falls back to while it keeps meeting other writers.
MIN_STEP = 50


class ClientSync:
    """One client's sync, as a series of short transactions.

    1. read what is needed to call the client (a transaction of its own);
    2. fetch the client's list, with no transaction open;
    3. add and subscribe what is new, then unsubscribe what is gone, in
       steps of up to STEP URLs, each a transaction that is retried on its
       own, with fewer URLs, when it conflicts with another process
       (`db.stepwise`);
    4. send every state, each batch read in a short transaction of its own
       while the previous batch travels;
    5. note the success, and remove from the client's pending changes what
       went out unchanged (another short transaction).

    Only URLs the client had before the fetch are unsubscribed, and a URL
    the client registers or unregisters over the API while its sync runs
    is left as the API left it (syncwindow.py).
    """

    def __init__(self, client_id, now, settings, attempts=None):
        self.client_id = client_id
        self.now = now
        self.settings = settings
        self.attempts = attempts

    def _step(self, work):
        return gocept.lms.db.retrying(
            transaction.manager, work, self.attempts, 'sync')

    def _steps(self, work, items):
        return gocept.lms.db.stepwise(
            transaction.manager, work, items, STEP, MIN_STEP, self.attempts,
            'sync')

    def _client(self):
        client = zope.component.getUtility(IClientProvider).get(
            self.client_id)
        if client is None:
            raise ClientGone(self.client_id)
        return client

    def run(self):
        started = time.monotonic()
        callback, password, before, known = self._step(self._prepare)
        transport = zope.component.getUtility(
            gocept.lms.interfaces.ICallbackTransport)
        remote = transport.connect(
            callback, self.settings.callback_timeout).xmlrpc_getAllLinks(
            self.client_id, password)
        if not isinstance(remote, (list, tuple)):
            raise SyncError('xmlrpc_getAllLinks answered %s, not a list'
                            % type(remote).__name__)
        # What the client had is known by its strings: only URLs new to
        # it are looked up in (or added to) the URL index.
        wanted = BTrees.LLBTree.LLTreeSet()
        unseen = []
        for url in remote:
            key = known.get(url) if isinstance(url, str) else None
            if key is None:
                unseen.append(url)
            else:
                wanted.insert(key)
        del known
        added = 0
        for keys, new in self._steps(self._add, unseen):
            wanted.update(keys)
            added += new
        gone = list(BTrees.LLBTree.difference(before, wanted))
        removed = sum(self._steps(self._remove, gone))
        notified, pending = self._send(transport, callback, password)
        self._step(lambda: self._succeeded(pending))
        return SyncResult(
            self.client_id, fetched=len(remote), added=added,
            removed=removed, notified=notified,
            seconds=time.monotonic() - started)

    def _prepare(self):
        client = self._client()
        # Committed before the fetch: from here on, what the client does
        # over the API is newer than its list, and the sync leaves it be.
        gocept.lms.syncwindow.begin(client)
        keys = BTrees.LLBTree.LLTreeSet()
        # All of it is read: its buckets together, not one after another.
        gocept.lms.prefetch.prefetch_whole(client.url_ids)
        keys.update(client.url_ids)
        provider = zope.component.getUtility(IURLProvider)
        known = {url: key for key, url in provider.strings(keys)}
        return (client.callback,
                client.callback_password(self.settings.secret_key_file),
                keys, known)

    def _add(self, urls):
        client = self._client()
        provider = zope.component.getUtility(IURLProvider)
        keys = provider.add_ids(gocept.lms.syncwindow.untouched(client, urls))
        new = BTrees.LLBTree.difference(keys, client.url_ids)
        client.register_urls([provider.by_id(key) for key in new])
        return keys, len(new)

    def _remove(self, keys):
        client = self._client()
        provider = zope.component.getUtility(IURLProvider)
        still = BTrees.LLBTree.intersection(
            BTrees.LLBTree.LLTreeSet(keys), client.url_ids)
        urls = gocept.lms.syncwindow.untouched(
            client, [provider.by_id(key) for key in still],
            lambda url: url.url)
        client.unregister_urls(urls)
        return len(urls)

    def _read_keys(self):
        client = self._client()
        keys = list(client.url_ids)
        return keys, dict(INotifications(client).pending.items())

    def _send(self, transport, callback, password):
        """Send every state; return (states sent, pending changes read
        before the first state was read)."""
        keys, pending = self._step(self._read_keys)
        if not keys:
            return 0, pending
        provider = zope.component.getUtility(IURLProvider)
        # URLs not checked yet stay pending: their first state is news.
        unknown = set()
        sent = gocept.lms.callback.send_states(
            transport.connect(callback, self.settings.callback_timeout),
            self.client_id, password, keys,
            lambda some: self._step(
                lambda: list(provider.state_rows(some, unknown))),
            self.settings.callback_batch_size)
        return sent, {key: when for key, when in pending.items()
                      if key not in unknown}

    def _succeeded(self, pending):
        client = self._client()
        # What went out unchanged is no news any more; a change that came
        # in meanwhile stays for the notifier.
        INotifications(client).pending.remove_unchanged(pending)
        gocept.lms.syncwindow.end(client)
        state = ISynchronization(client)
        state.last = state.last_attempt = self.now
        state.force = False
        state.failures = 0
        state.last_error = None


class ClientGone(Exception):
    """The client was removed while it was synced."""


def run(now=None, force_all=False, only=None, attempts=None,
        settings=None):
    """Sync every due client of the current site.

    Returns `(results, failures)`: the ISyncResult of each synced client and
    a list of `(client_id, error text)`. Each client is synced in short
    transactions of its own (see ClientSync); whatever the caller changed
    before is committed first. A step that conflicts with another process
    is retried on its own; a client that fails is recorded as failed and
    the others carry on. `settings` are the process's (by default those
    of etc/zope.conf).
    """
    now = now or gocept.lms.clock.utcnow()
    settings = settings or gocept.lms.settings.get()
    transaction.commit()
    # Like every step below, the first read rides out a database that is
    # away for a moment (PostgreSQL restarting) instead of ending the run.
    client_ids = gocept.lms.db.retrying(
        transaction.manager,
        lambda: list(zope.component.getUtility(IClientProvider).keys()),
        attempts, 'sync')
    results, failures = [], []
    for client_id in client_ids:
        started = time.monotonic()
        try:
            if not gocept.lms.db.retrying(
                    transaction.manager,
                    lambda: _due(client_id, now, force_all, only, settings),
                    attempts, 'sync'):
                continue
            result = ClientSync(client_id, now, settings, attempts).run()
        except ClientGone:
            continue  # removed while we were busy with it
        except Exception as error:
            transaction.abort()
            text = gocept.lms.failures.describe(error)
            failures.append((client_id, text))
            log.error('%s: sync failed after %.1f s: %s', client_id,
                      time.monotonic() - started, text,
                      exc_info=not isinstance(error, EXPECTED_ERRORS))
            _record_failure(client_id, now, error)
        else:
            results.append(result)
            log.info('%s', result)
            _switch_back_on(client_id, now, attempts)
    return results, failures


def _due(client_id, now, force_all, only, settings):
    client = zope.component.getUtility(IClientProvider).get(client_id)
    if client is None:
        return False
    if only is not None and client_id not in only:
        return False
    # Switched off by the LMS, the client is synced once a day (due()):
    # that is how the LMS learns it is back.
    if (INotifications(client).disabled_by
            == gocept.lms.interfaces.DISABLED_BY_CLIENT):
        if only is not None:
            # Asked for by name: say why nothing happens.
            raise SyncError('notifications are disabled by the client (it '
                            'turns them on with setClientNotifications)')
        return False
    return (force_all or only is not None
            or ISynchronization(client).due(now, settings))


def _switch_back_on(client_id, now, attempts):
    """A synced client answered: notifications the LMS switched off come
    back on."""
    def work():
        client = zope.component.getUtility(IClientProvider).get(client_id)
        if client is not None:
            gocept.lms.notify.switch_back_on(client, now)
    try:
        gocept.lms.db.retrying(transaction.manager, work, attempts, 'sync')
    except Exception as error:
        # The next day's sync tries again; the other clients carry on.
        log.error('%s: could not switch notifications back on: %s',
                  client_id, gocept.lms.failures.describe(error),
                  exc_info=not isinstance(error, EXPECTED_ERRORS))


def _record_failure(client_id, now, error):
    def work():
        client = zope.component.getUtility(IClientProvider).get(client_id)
        if client is not None:
            ISynchronization(client).record_failure(now, error)
    try:
        gocept.lms.db.retrying(transaction.manager, work, where='sync')
    except ConflictError:
        log.error('%s: could not record the failed sync', client_id)


def sync(now=None):
    """Sync every due client of the current site (the seed's entry point)."""
    run(now)
