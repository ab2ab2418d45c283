"""Clients, the client provider and the per-client sync/notification state."""

import concurrent.futures
import time

import persistent
import zope.annotation
import zope.annotation.interfaces
import zope.component
import zope.container.btree
import zope.container.contained
import zope.interface
import zope.lifecycleevent.interfaces

import gocept.lms.interfaces
import gocept.lms.merging
import gocept.lms.secrets
import gocept.lms.settings
import gocept.lms.url


@zope.interface.implementer(
    gocept.lms.interfaces.IClient,
    zope.annotation.interfaces.IAttributeAnnotatable)
class Client(zope.container.contained.Contained, persistent.Persistent):

    contact_name = ''
    contact_email = ''
    callback = None
    _password_hash = None
    _password_sealed = None

    def __init__(self, id):
        self.id = id
        self.__name__ = id
        self._url_ids = gocept.lms.url.KeySet()

    def __repr__(self):
        return '<Client %r>' % self.id

    # Passwords

    def _set_password(self, password):
        self._password_hash = gocept.lms.secrets.hash_password(password)
        self._password_sealed = gocept.lms.secrets.seal(password)

    password = property(None, _set_password)

    def check_password(self, password):
        return gocept.lms.secrets.check_password(
            password, self._password_hash)

    def callback_password(self):
        """The plaintext password, for calls to the client's callback."""
        if self._password_sealed is None:
            return None
        return gocept.lms.secrets.unseal(self._password_sealed)

    # The client-URL relation

    @property
    def url_ids(self):
        return self._url_ids

    @property
    def urls(self):
        return SubscribedURLs(self, self._url_ids)

    def register_urls(self, urls):
        for url in urls:
            self._url_ids.insert(url.id)
            if self.id not in url.clients:
                url.clients = url.clients | {self.id}

    def unregister_urls(self, urls):
        provider = None
        pending = gocept.lms.interfaces.INotifications(self).pending
        for url in urls:
            if url.id in self._url_ids:
                self._url_ids.remove(url.id)
            if url.id in pending:
                del pending[url.id]
            if self.id in url.clients:
                url.clients = url.clients - {self.id}
            if not url.clients:
                if provider is None:
                    provider = zope.component.getUtility(
                        gocept.lms.interfaces.IURLProvider, context=self)
                provider.remove(url)

    # Talking to the client

    def _connect(self):
        transport = zope.component.getUtility(
            gocept.lms.interfaces.ICallbackTransport, context=self)
        return transport.connect(self.callback)

    def remote_urls(self):
        return self._connect().xmlrpc_getAllLinks(
            self.id, self.callback_password())

    def notify(self, urls):
        return self._send_states([url.id for url in urls])

    def notify_all(self):
        return self._send_states(self._url_ids)

    def notify_keys(self, keys):
        return self._send_states(keys)

    def _send_states(self, ids):
        provider = zope.component.getUtility(
            gocept.lms.interfaces.IURLProvider, context=self)
        batch_size = gocept.lms.settings.get().callback_batch_size
        password = self.callback_password()
        proxy = None
        sent = 0
        # One batch travels while the next is read from the database: the
        # client's time to take a batch and ours to load one overlap. Only
        # one call is in flight, so the client sees them in order.
        with concurrent.futures.ThreadPoolExecutor(1) as sender:
            in_flight = None
            for states in batched(provider.state_rows(ids), batch_size):
                if proxy is None:
                    proxy = self._connect()
                if in_flight is not None:
                    in_flight.result()
                in_flight = sender.submit(
                    proxy.updateManyStates, self.id, password, states)
                sent += len(states)
            if in_flight is not None:
                in_flight.result()
        return sent


def batched(iterable, size):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SubscribedURLs:
    """The URLs of a client, looked up lazily by key."""

    def __init__(self, client, ids):
        self._client = client
        self._ids = ids

    def __len__(self):
        return len(self._ids)

    def __iter__(self):
        provider = zope.component.getUtility(
            gocept.lms.interfaces.IURLProvider, context=self._client)
        for key in self._ids:
            url = provider.by_id(key)
            if url is not None:
                yield url

    def __contains__(self, url):
        return getattr(url, 'id', None) in self._ids


@zope.interface.implementer(gocept.lms.interfaces.IClientProvider)
class ClientProvider(zope.container.btree.BTreeContainer):

    def add(self, client):
        if client.id in self:
            raise KeyError('Client %r exists already' % client.id)
        self[client.id] = client

    def remove(self, id):
        client = self[id]
        client.unregister_urls(list(client.urls))
        del self[id]


@zope.component.adapter(gocept.lms.interfaces.IClient)
@zope.interface.implementer(gocept.lms.interfaces.INotifications)
class Notifications(zope.container.contained.Contained,
                    persistent.Persistent):

    enabled = True
    last = None
    last_attempt = None
    last_error = None
    failed = 0

    def __init__(self):
        # The checker adds to it while the notifier and the syncer remove
        # what they sent: a map that merges such changes (merging.py).
        self.pending = gocept.lms.merging.ChangeMap()


notifications = zope.annotation.factory(
    Notifications, 'gocept.lms.notifications')


@zope.component.adapter(
    gocept.lms.interfaces.IClient,
    zope.lifecycleevent.interfaces.IObjectAddedEvent)
def create_client_state(client, event):
    """Create the per-client state with the client.

    The annotation adapters would create it on first use otherwise, and a
    process that only reads (the notifier looking for due clients) would
    then write the client, colliding with whoever else does.
    """
    gocept.lms.interfaces.INotifications(client)
    gocept.lms.interfaces.ISynchronization(client)


@zope.component.adapter(gocept.lms.interfaces.IURLStateChangedEvent)
def remember_state_change(event):
    """Queue a changed URL for every subscribed client's next push."""
    # Looked up from the URL, so a process need not have set the site.
    clients = zope.component.getUtility(
        gocept.lms.interfaces.IClientProvider, context=event.url)
    # The change time tells the notifier whether a URL changed again while
    # its previous state was on the way to the client.
    changed = time.time_ns() // 1000
    for client_id in event.url.clients:
        client = clients.get(client_id)
        if client is not None:
            gocept.lms.interfaces.INotifications(client).pending[
                event.url.id] = changed
