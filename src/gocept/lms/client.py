"""Clients, the client provider and the per-client sync/notification state."""

import time

import persistent
import zope.annotation
import zope.annotation.interfaces
import zope.component
import zope.container.btree
import zope.container.contained
import zope.interface
import zope.lifecycleevent.interfaces

import gocept.lms.clientfigures
import gocept.lms.interfaces
import gocept.lms.merging
import gocept.lms.secrets
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

    def set_password(self, password, key_file):
        """Keep a salted hash of `password` for check_password, and a copy
        sealed with the key in `key_file` for callback_password."""
        self._password_hash = gocept.lms.secrets.hash_password(password)
        self._password_sealed = gocept.lms.secrets.seal(password, key_file)

    def check_password(self, password):
        return gocept.lms.secrets.check_password(
            password, self._password_hash)

    def callback_password(self, key_file):
        """The plaintext password, for calls to the client's callback."""
        if self._password_sealed is None:
            return None
        return gocept.lms.secrets.unseal(self._password_sealed, key_file)

    # The client-URL relation

    @property
    def url_ids(self):
        return self._url_ids

    @property
    def urls(self):
        return SubscribedURLs(self, self._url_ids)

    def register_urls(self, urls):
        pending = None
        for url in urls:
            self._url_ids.insert(url.id)
            clients = url.clients
            if self.id in clients:
                continue
            url.clients = clients | {self.id}
            if clients and url.state == gocept.lms.interfaces.UNKNOWN:
                # Another client's URL, not checked yet: the checker may
                # be writing its first state right now, for the clients it
                # knew of. Waiting in our pending map, the URL reaches us
                # with its first state whichever transaction wins.
                if pending is None:
                    pending = gocept.lms.interfaces.INotifications(
                        self).pending
                pending.note(url.id, time.time_ns() // 1000)

    def unregister_urls(self, urls):
        urls = list(urls)
        if not urls:
            return
        provider = zope.component.getUtility(
            gocept.lms.interfaces.IURLProvider, context=self)
        provider.prefetch(url.id for url in urls)
        pending = gocept.lms.interfaces.INotifications(self).pending
        orphans = []
        for url in urls:
            if url.id in self._url_ids:
                self._url_ids.remove(url.id)
            if url.id in pending:
                del pending[url.id]
            if self.id in url.clients:
                url.clients = url.clients - {self.id}
            if not url.clients:
                orphans.append(url)
        provider.remove_many(orphans)


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
class Notifications(gocept.lms.clientfigures.Noted,
                    zope.container.contained.Contained,
                    persistent.Persistent):

    figures_part = gocept.lms.clientfigures.NOTIFY

    enabled = True
    last = None
    last_attempt = None
    last_error = None
    failed = 0
    # Added later: clients stored before read these defaults.
    failing_since = None
    disabled_at = None
    _disabled_by = None

    def __init__(self):
        self.pending = PendingChanges()

    @property
    def disabled_by(self):
        if self.enabled:
            return None
        if self._disabled_by is None:
            # Switched off before this was recorded: only the notifier
            # leaves failed pushes counted when it switches them off.
            return (gocept.lms.interfaces.DISABLED_BY_LMS if self.failed
                    else gocept.lms.interfaces.DISABLED_BY_CLIENT)
        return self._disabled_by

    def switch_off(self, by, when):
        if self.disabled_by == by:
            return
        self.enabled = False
        self._disabled_by = by
        self.disabled_at = when

    def switch_on(self):
        self.enabled = True
        self.failed = 0
        self.failing_since = None
        self._disabled_by = None
        self.disabled_at = None


@zope.interface.implementer(gocept.lms.interfaces.IPendingChanges)
class PendingChanges(gocept.lms.merging.ChangeMap):
    """URL key -> time of its latest state change, for one client.

    The notifier adds to it from the change journal (journal.py), a
    subscription adds URLs not checked yet, and the notifier and the
    syncer remove what they sent: a map that merges such changes
    (merging.py). It is written
    whole, so it is kept small: past `LIMIT` entries it is replaced by a
    note that everything changed (`EVERYTHING`), and the next push sends
    all of the client's states, as the syncer does.
    """

    LIMIT = 1000
    EVERYTHING = -1

    def note(self, key, when):
        # The latest change wins, as when two transactions meet (merging).
        if self._data.get(key, when) <= when:
            self[key] = when
        if len(self) > self.LIMIT:
            self._data = {self.EVERYTHING: max(self._data.values())}

    def keys_to_send(self, snapshot, client):
        """The keys a push of `snapshot` (read from this map) sends."""
        if self.EVERYTHING in snapshot:
            return list(client.url_ids)
        return sorted(key for key in snapshot if key in client.url_ids)


# The annotation key (monitoring prefetches the states by it).
NOTIFICATIONS_KEY = 'gocept.lms.notifications'
notifications = zope.annotation.factory(Notifications, NOTIFICATIONS_KEY)


@zope.component.adapter(
    gocept.lms.interfaces.IClient,
    zope.lifecycleevent.interfaces.IObjectAddedEvent)
def create_client_state(client, event):
    """Create the per-client state with the client.

    The annotation adapters would create it on first use otherwise, and a
    process that only reads (the notifier looking for due clients) would
    then write the client, colliding with whoever else does.
    """
    gocept.lms.clientfigures.note(
        gocept.lms.interfaces.INotifications(client),
        gocept.lms.clientfigures.NOTIFY)
    gocept.lms.clientfigures.note(
        gocept.lms.interfaces.ISynchronization(client),
        gocept.lms.clientfigures.SYNC)


@zope.component.adapter(
    gocept.lms.interfaces.IClient,
    zope.lifecycleevent.interfaces.IObjectRemovedEvent)
def forget_client_figures(client, event):
    figures = zope.component.queryUtility(
        gocept.lms.interfaces.IClientFigures, context=event.oldParent)
    if figures is not None:
        figures.forget(client.id)
