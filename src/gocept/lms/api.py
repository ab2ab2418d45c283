"""The XML-RPC API of the LMS site (protocol version 2).

api.txt is the guide for client authors; protocol.txt fixes names,
argument order and answers of the methods that clients in the field call.

Two kinds of authentication meet here:

* the client methods take the client's id and password first. Wrong
  credentials answer HTTP 401, because that is what old clients (built on
  xmlrpclib) expect and report as a ProtocolError;

* the admin methods (registerClient, listClients, unregisterClient) take
  the admin secret first and answer a Fault when it is wrong.

Every refusal happens before anything is written, and every answer that is
a Fault dooms the transaction, so a call either changes everything it was
asked to or nothing.
"""

import hashlib
import hmac
import logging
import re
import threading
import urllib.parse
import xmlrpc.client

import BTrees.LLBTree
import transaction
import zope.component
import zope.publisher.xmlrpc

import gocept.lms.client
import gocept.lms.clock
import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.mail
import gocept.lms.mailaddress
import gocept.lms.secrets
import gocept.lms.settings
import gocept.lms.syncwindow
import gocept.lms.throttle
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.interfaces import INotifications, ISynchronization


log = logging.getLogger(__name__)

PROTOCOL_VERSION = 2

# Fault codes. The negative ones follow the "specification for fault code
# interoperability" that several XML-RPC libraries understand; the positive
# ones are the LMS's own.
PARSE_ERROR = -32700
UNSUPPORTED_ENCODING = -32701
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
ADMIN_UNAUTHORIZED = 1
CLIENT_EXISTS = 2
UNKNOWN_CLIENT = 3
TOO_MANY_URLS = 4
TOO_LARGE = 5
TOO_MANY_FAILURES = 6

# URLs per transaction of a large registerURLs or unregisterURLs call, and
# the fewest a step falls back to while it keeps meeting other writers.
STEP = 500
MIN_STEP = 25


def in_steps(work, urls):
    """work(urls) for a list of URLs, in steps of up to STEP URLs; returns
    the concatenated results.

    Each step is a transaction of its own, retried on its own when it
    conflicts (the request's transaction has only read so far). A call of
    up to STEP URLs is one step, stored completely or not at all. In a
    larger one, a step that conflicts is retried with fewer URLs, down to
    MIN_STEP (`db.stepwise`): a transaction that touches thousands of
    buckets meets every other writer, and would start over again and
    again. The steps are safe to repeat (registering a URL twice changes
    nothing), so a call that fails half way is completed by the client's
    next attempt.

    The threads of one web server take turns (`WRITERS`): their steps
    insert into the same BTrees, whose inner nodes every insert reads as
    current, so two steps at once in one process mostly make one of them
    start over, and on PostgreSQL often both.
    """
    result = []
    for some in gocept.lms.db.stepwise(
            transaction.manager, work, urls, STEP,
            MIN_STEP if len(urls) > STEP else len(urls), where='web',
            turn=WRITERS):
        result.extend(some)
    return result


# The turn of one registration step at a time in this process (in_steps).
WRITERS = threading.Lock()

# The signature of every method, checked before the call so a client with
# the wrong number of arguments learns which ones are expected.
SIGNATURES = {
    'registerClient': ('secret', 'client_id', 'callback_url',
                       'contact_name', 'contact_email'),
    'listClients': ('secret',),
    'unregisterClient': ('secret', 'client_id'),
    'checkConnection': ('client_id', 'password'),
    'registerURLs': ('client_id', 'password', 'urls'),
    'unregisterURLs': ('client_id', 'password', 'urls'),
    'getURLStates': ('client_id', 'password', 'urls'),
    'getClientNotifications': ('client_id', 'password'),
    'setClientNotifications': ('client_id', 'password', 'enabled'),
    'forceSynchronization': ('client_id', 'password'),
    'getInfoFrameURL': ('client_id', 'password'),
}


def _string(value):
    return isinstance(value, str)


def _array(value):
    return isinstance(value, (list, tuple))


def _boolean(value):
    # Old clients built on xmlrpclib may send 0/1 for a boolean.
    return isinstance(value, int) and value in (0, 1)


# What each argument must be, checked with the argument count before the
# call: a test, and the words of the Fault for a value that fails it.
# What the values must look like beyond their type is up to each method.
ARGUMENT_TYPES = {
    'secret': (_string, 'a string'),
    'client_id': (_string, 'a string'),
    'password': (_string, 'a string'),
    'callback_url': (_string, 'a string'),
    'contact_name': (_string, 'a string'),
    'contact_email': (_string, 'a string'),
    'urls': (_array, 'an array of URL strings'),
    'enabled': (_boolean, 'a boolean'),
}

CLIENT_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$')


class APIError(Exception):
    """Answered as an XML-RPC Fault."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ClientUnauthorized(Exception):
    """Wrong client id or password: answered with HTTP 401.

    `first`: the first failed login after a quiet spell, which gets a line
    in the log; the login throttle sums up the others.
    """

    def __init__(self, client, first=True):
        super().__init__(client)
        self.first = first


class LoginRefused(APIError):
    """A wrong admin secret, or a login refused by the login throttle.

    No log line each: the throttle sums them up (throttle.py).
    """


# The name of the admin secret for the login throttle.
ADMIN_NAME = 'the admin secret'


def signature(name):
    return '%s(%s)' % (name, ', '.join(SIGNATURES[name]))


class LMSAPI(zope.publisher.xmlrpc.XMLRPCView):
    """The XML-RPC methods of an LMS site."""

    @property
    def settings(self):
        return gocept.lms.settings.get()

    @property
    def clients(self):
        return zope.component.getUtility(IClientProvider)

    @property
    def urls(self):
        return zope.component.getUtility(IURLProvider)

    def _call(self, name, impl, *args):
        try:
            return impl(*args)
        except APIError as error:
            transaction.doom()
            if not isinstance(error, LoginRefused):
                log.info('%s refused: %s', name, error.message)
            return xmlrpc.client.Fault(error.code, error.message)
        except ClientUnauthorized as error:
            transaction.doom()
            # The id helps the operator find a misconfigured client; the
            # password never reaches the log.
            if error.first:
                log.warning('%s: wrong credentials for client %s from %s '
                            '(further failed logins are summed up by '
                            'gocept.lms.throttle)',
                            name, error, self._address())
            response = self.request.response
            response.setStatus(401)
            response.setHeader('WWW-Authenticate', 'LMS realm="clients"')
            return xmlrpc.client.Fault(
                401, 'Unauthorized: wrong client id or password')

    # Authentication

    def _address(self):
        return self.request.get('REMOTE_ADDR', '?')

    def _refuse_if_throttled(self, name):
        """Refuse a login as `name` from the caller's address while the
        login throttle refuses the name or the address (throttle.py).
        Call it before any secret is looked at."""
        refusal = gocept.lms.throttle.logins().refusal(
            name, self._address(),
            gocept.lms.throttle.Limits.from_settings(self.settings))
        if refusal is not None:
            raise LoginRefused(
                TOO_MANY_FAILURES,
                'Too many failed logins %s: try again in %d seconds.'
                % (refusal.reason, refusal.seconds))

    def _failed(self, name):
        """Count a failed login as `name`; true for the first one after a
        quiet spell (log it)."""
        return gocept.lms.throttle.logins().failed(
            name, self._address(),
            gocept.lms.throttle.Limits.from_settings(self.settings))

    def _client(self, client_id, password):
        name = 'client %s' % shorten(client_id)
        self._refuse_if_throttled(name)
        client = None
        if isinstance(client_id, str):
            client = self.clients.get(client_id)
        if client is None:
            # Costs the same as a wrong password, so the answer time does
            # not tell which client ids exist.
            gocept.lms.secrets.check_password(str(password), _DUMMY_HASH)
        elif client.check_password(password):
            return client
        raise ClientUnauthorized(shorten(client_id), self._failed(name))

    def _admin(self, secret):
        self._refuse_if_throttled(ADMIN_NAME)
        path = self.settings.admin_secret_file
        expected = b''
        if path:
            try:
                with open(path, 'rb') as f:
                    expected = f.read().strip()
            except OSError as error:
                log.error('Cannot read the admin secret file: %s', error)
        if not expected:
            raise APIError(
                ADMIN_UNAUTHORIZED,
                'Admin methods are disabled on this LMS: no admin secret '
                'is configured (admin-secret-file in zope.conf).')
        given = secret.encode('utf-8') if isinstance(secret, str) else b''
        # Comparing digests keeps the comparison constant-time even for
        # secrets of different lengths.
        if not hmac.compare_digest(hashlib.sha256(given).digest(),
                                   hashlib.sha256(expected).digest()):
            if self._failed(ADMIN_NAME):
                log.warning('Wrong admin secret from %s (further failed '
                            'logins are summed up by gocept.lms.throttle)',
                            self._address())
            raise LoginRefused(ADMIN_UNAUTHORIZED, 'Wrong admin secret.')

    # Arguments

    def _url_list(self, urls):
        limit = self.settings.max_urls_per_call
        if len(urls) > limit:
            raise APIError(
                TOO_MANY_URLS,
                'Too many URLs in one call: %d; this LMS accepts at most %d '
                'per call. Nothing was changed; split the list into several '
                'calls.' % (len(urls), limit))
        # Entries of other types are junk like invalid URLs; they are
        # skipped, not refused, as the protocol asks.
        return [url for url in urls if isinstance(url, str)]

    # Admin methods

    def registerClient(self, secret, client_id, callback_url, contact_name,
                       contact_email):
        """Create a client; its password goes to the contact by mail."""
        return self._call('registerClient', self._register_client, secret,
                          client_id, callback_url, contact_name,
                          contact_email)

    def _register_client(self, secret, client_id, callback_url,
                         contact_name, contact_email):
        self._admin(secret)
        if not CLIENT_ID.fullmatch(client_id):
            raise APIError(
                INVALID_PARAMS,
                'client_id must be 1 to 100 ASCII letters, digits, dots, '
                'dashes or underscores, starting with a letter or digit; '
                'got %s.' % shorten(client_id))
        if not is_callback_url(callback_url):
            raise APIError(
                INVALID_PARAMS,
                'callback_url must be an absolute http or https URL, e.g. '
                'http://www.example.com/portal_linkchecker/database/; '
                'got %s.' % shorten(callback_url))
        # The name goes into the To: header of the mails: a line break
        # would end the header (the mail library refuses to send it).
        if len(contact_name) > 200 or not contact_name.isprintable():
            raise APIError(
                INVALID_PARAMS,
                'contact_name must be one line of at most 200 printable '
                'characters, without line breaks, tabs or other control '
                'characters; got %s.' % shorten(contact_name))
        # ASCII only: the LMS's mails go out without SMTPUTF8.
        if (not contact_email.isascii()
                or gocept.lms.mailaddress.address_problem(contact_email)):
            raise APIError(
                INVALID_PARAMS,
                'contact_email must be an e-mail address like '
                'webmaster@example.com; got %s.' % shorten(contact_email))
        if client_id in self.clients:
            raise APIError(
                CLIENT_EXISTS,
                'A client with the id %r exists already. Choose another id, '
                'or unregisterClient the old one first.' % client_id)
        client = gocept.lms.client.Client(client_id)
        password = gocept.lms.secrets.generate_password()
        client.set_password(password, self.settings.secret_key_file)
        client.callback = callback_url
        client.contact_name = contact_name.strip()
        client.contact_email = contact_email
        self.clients.add(client)
        gocept.lms.mail.send_registration(client, password)
        log.info('Registered client %r (%s)', client_id, callback_url)
        return True

    def listClients(self, secret):
        """A struct per client, ordered by id."""
        return self._call('listClients', self._list_clients, secret)

    def _list_clients(self, secret):
        self._admin(secret)
        result = []
        for client in self.clients.values():
            notifications = INotifications(client)
            sync = ISynchronization(client)
            result.append({
                'id': client.id,
                'contact_name': client.contact_name or '',
                'contact_email': client.contact_email or '',
                'callback': client.callback or '',
                'notifications': bool(notifications.enabled),
                'failed_notifications': notifications.failed,
                'last_notification': _iso(notifications.last),
                'last_sync': _iso(sync.last),
                'last_sync_error': sync.last_error or '',
                'urls': len(client.url_ids),
            })
        return result

    def unregisterClient(self, secret, client_id):
        """Remove a client and its subscriptions; mail the contact."""
        return self._call('unregisterClient', self._unregister_client,
                          secret, client_id)

    def _unregister_client(self, secret, client_id):
        self._admin(secret)
        client = self.clients.get(client_id)
        if client is None:
            raise APIError(UNKNOWN_CLIENT,
                           'There is no client %s.' % shorten(client_id))
        gocept.lms.mail.send_removal(client)
        self.clients.remove(client_id)
        log.info('Unregistered client %r', client_id)
        return True

    # Client methods (protocol version 2)

    def checkConnection(self, client_id, password):
        """The protocol version; a client works only with 2."""
        return self._call('checkConnection', self._check_connection,
                          client_id, password)

    def _check_connection(self, client_id, password):
        self._client(client_id, password)
        return PROTOCOL_VERSION

    def registerURLs(self, client_id, password, urls):
        """Subscribe; answer [url, state, reason] of the URLs already
        checked."""
        return self._call('registerURLs', self._register_urls,
                          client_id, password, urls)

    def _register_urls(self, client_id, password, urls):
        self._client(client_id, password)
        urls = self._url_list(urls)
        unknown = gocept.lms.interfaces.UNKNOWN

        def register(some):
            objects = self.urls.add_multiple(some)
            client = self.clients[client_id]
            client.register_urls(objects)
            gocept.lms.syncwindow.note(client, some)
            return [[url.url, url.state, url.reason or '']
                    for url in objects if url.state != unknown]
        return in_steps(register, urls)

    def unregisterURLs(self, client_id, password, urls):
        """Unsubscribe; URLs the client does not have are ignored."""
        return self._call('unregisterURLs', self._unregister_urls,
                          client_id, password, urls)

    def _unregister_urls(self, client_id, password, urls):
        self._client(client_id, password)
        urls = self._url_list(urls)

        def unregister(some):
            provider, client = self.urls, self.clients[client_id]
            keys = BTrees.LLBTree.intersection(
                provider.ids_for(some), client.url_ids)
            client.unregister_urls([provider.by_id(key) for key in keys])
            gocept.lms.syncwindow.note(client, some)
            return []
        in_steps(unregister, urls)
        return True

    def getURLStates(self, client_id, password, urls):
        """[url, state, reason] of each given URL the client subscribes
        to, `unknown` for those not checked yet."""
        return self._call('getURLStates', self._get_url_states,
                          client_id, password, urls)

    def _get_url_states(self, client_id, password, urls):
        client = self._client(client_id, password)
        urls = self._url_list(urls)
        provider = self.urls
        mine = client.url_ids
        result = []
        seen = set()
        for url in urls:
            if url in seen:
                continue
            seen.add(url)
            obj = provider.get_url(url)
            if obj is not None and obj.id in mine:
                result.append([obj.url, obj.state, obj.reason or ''])
        return result

    def getClientNotifications(self, client_id, password):
        """Whether the LMS pushes state changes to the client."""
        return self._call('getClientNotifications',
                          self._get_notifications, client_id, password)

    def _get_notifications(self, client_id, password):
        client = self._client(client_id, password)
        return bool(INotifications(client).enabled)

    def setClientNotifications(self, client_id, password, enabled):
        """Turn pushes on or off; turning them on forgets past failures.

        Switched off here, they stay off and the syncer leaves the client
        alone; switched off by the LMS after failures, they come back on
        when the client answers the daily sync.
        """
        return self._call('setClientNotifications',
                          self._set_notifications, client_id, password,
                          enabled)

    def _set_notifications(self, client_id, password, enabled):
        client = self._client(client_id, password)
        enabled = bool(enabled)  # old clients send 0 or 1
        notifications = INotifications(client)
        if enabled:
            notifications.switch_on()
        else:
            notifications.switch_off(
                gocept.lms.interfaces.DISABLED_BY_CLIENT,
                gocept.lms.clock.utcnow())
        return True

    def forceSynchronization(self, client_id, password):
        """Sync the client at the next syncer run."""
        return self._call('forceSynchronization', self._force_sync,
                          client_id, password)

    def _force_sync(self, client_id, password):
        client = self._client(client_id, password)
        ISynchronization(client).force = True
        return True

    def getInfoFrameURL(self, client_id, password):
        """The address of the LMS's status page for this client."""
        return self._call('getInfoFrameURL', self._info_frame_url,
                          client_id, password)

    def _info_frame_url(self, client_id, password):
        client = self._client(client_id, password)
        return info_frame_url(client)


def info_frame_url(client):
    import gocept.lms.browser.status
    return gocept.lms.browser.status.status_url(client)


def is_callback_url(url):
    if (not isinstance(url, str) or not url.isascii() or len(url) > 2048
            or not url.isprintable() or ' ' in url):
        return False
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # raises for a port that is not a number
    except ValueError:
        return False
    return parsed.scheme in ('http', 'https') and bool(parsed.hostname)


_DUMMY_HASH = gocept.lms.secrets.hash_password('no such client')


def shorten(value):
    if isinstance(value, str):
        # The value may be megabytes long; repr() only what is shown.
        value = value[:60]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _iso(value):
    return value.isoformat() if value is not None else ''
