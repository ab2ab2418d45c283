"""URLs and the URL provider."""

import datetime
import random
import re

import BTrees.LOBTree
import BTrees.OLBTree
import BTrees.LLBTree
import BTrees.Length
import persistent
import zope.container.contained
import zope.event
import zope.interface

import gocept.lms.interfaces
from gocept.lms.interfaces import InvalidURLError


MAX_URL_LENGTH = 2048

# URL keys fit in 31 bits, so the schedule can pack (time, key) into one
# 64-bit integer; two billion keys leave room for a million URLs.
KEY_BITS = 31
MAX_KEY = 2 ** KEY_BITS


# An absolute URI: a scheme, a colon, then printable ASCII without spaces,
# and not an empty authority ("http://"). A regular expression rather than
# urllib.parse: the syncer validates every URL of every client every day.
VALID_URL = re.compile(
    r'[A-Za-z][A-Za-z0-9+.\-]*:(?!//(?:[/?#]|$))[!-~]+\Z')


def is_valid(url):
    """See IURLProvider.is_valid."""
    return (isinstance(url, str) and len(url) <= MAX_URL_LENGTH
            and VALID_URL.match(url) is not None)


@zope.interface.implementer(gocept.lms.interfaces.IURLStateChangedEvent)
class URLStateChangedEvent:

    def __init__(self, url, old_state):
        self.url = url
        self.old_state = old_state


@zope.interface.implementer(gocept.lms.interfaces.IURLsAddedEvent)
class URLsAddedEvent:

    def __init__(self, provider, urls):
        self.provider = provider
        self.urls = urls


@zope.interface.implementer(gocept.lms.interfaces.IURLRemovedEvent)
class URLRemovedEvent:

    def __init__(self, url, state=None):
        self.url = url
        self.state = state


# The fields of a URL record, as stored in URLProvider._records. Times are
# seconds since the epoch (UTC) or None.
URL_, STATE, REASON, LAST_CHECK, LAST_STATE_CHANGE, HISTORY = range(6)
NEW_RECORD = (None, gocept.lms.interfaces.UNKNOWN,
              gocept.lms.interfaces.UNKNOWN, None, None, None)


def to_datetime(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def to_seconds(when):
    return None if when is None else when.timestamp()


@zope.interface.implementer(gocept.lms.interfaces.IURL)
class URL(zope.container.contained.Contained):
    """A handle on one URL record of a URL provider.

    It holds no data of its own: every attribute reads the provider's
    record, every change writes it there. Two handles on the same URL are
    equal.
    """

    def __init__(self, provider, id):
        self.__parent__ = provider
        self.id = id
        self.__name__ = str(id)

    def __repr__(self):
        return '<URL %s %r>' % (self.id, self.url)

    def __eq__(self, other):
        return (isinstance(other, URL) and other.id == self.id
                and other.__parent__ is self.__parent__)

    def __hash__(self):
        return hash(self.id)

    @property
    def _record(self):
        return self.__parent__._records[self.id]

    url = property(lambda self: self._record[URL_])
    state = property(lambda self: self._record[STATE])
    reason = property(lambda self: self._record[REASON])
    last_check = property(lambda self: to_datetime(self._record[LAST_CHECK]))
    last_state_change = property(
        lambda self: to_datetime(self._record[LAST_STATE_CHANGE]))
    history = property(lambda self: self._record[HISTORY])

    def _get_clients(self):
        return frozenset(self.__parent__._clients.get(self.id, ()))

    def _set_clients(self, clients):
        if clients:
            self.__parent__._clients[self.id] = tuple(sorted(clients))
        elif self.id in self.__parent__._clients:
            del self.__parent__._clients[self.id]

    clients = property(_get_clients, _set_clients)

    def update_check(self, state, when, reason, history=None):
        if state not in gocept.lms.interfaces.STATES:
            raise ValueError('Unknown state %r' % state)
        record = list(self._record)
        old_state = record[STATE]
        record[LAST_CHECK] = to_seconds(when)
        record[REASON] = reason
        record[HISTORY] = history
        if state != old_state:
            record[STATE] = state
            record[LAST_STATE_CHANGE] = to_seconds(when)
        self.__parent__._records[self.id] = tuple(record)
        if state != old_state:
            zope.event.notify(URLStateChangedEvent(self, old_state))


class URLIndex(BTrees.OLBTree.OLBTree):
    """URL -> key. Written only when URLs come or go, read whenever a
    client's list is reconciled: large buckets mean few database loads."""

    max_leaf_size = 500
    max_internal_size = 1000


class KeySet(BTrees.LLBTree.LLTreeSet):
    """A set of URL keys (a client's subscriptions): large buckets, as the
    syncer reads whole sets and subscriptions change rarely."""

    max_leaf_size = 1000
    max_internal_size = 1000


@zope.interface.implementer(gocept.lms.interfaces.IURLProvider)
class URLProvider(zope.container.contained.Contained, persistent.Persistent):
    """All URLs of a site, as records in BTrees keyed by integers.

    A million URLs as a million persistent objects would cost a database
    load per URL whenever the syncer sends a client its states; as tuples
    in BTree buckets they load some sixty at a time. Three BTrees share the
    key:

    `_records`  key -> (url, state, reason, last check, last state change,
                        checker history): written by the checker
    `_clients`  key -> sorted tuple of client ids: written by subscriptions
    `_ids`      url -> key

    Because the checker and subscriptions write different BTrees, they do
    not conflict; and BTree buckets merge concurrent changes of different
    keys, so two checker batches do not conflict either.

    Keys are random 31-bit integers (as zope.intid uses) so concurrent
    transactions adding URLs do not fight over a counter, and the
    client-URL relation is compact LLTreeSets whose set operations run in C.
    """

    def __init__(self):
        self._records = BTrees.LOBTree.LOBTree()
        self._clients = BTrees.LOBTree.LOBTree()
        self._ids = URLIndex()
        self._length = BTrees.Length.Length()

    # IEnumerableMapping, by traversal name

    def _key(self, name):
        try:
            return int(name)
        except (TypeError, ValueError):
            return None

    def get(self, name, default=None):
        return self.by_id(self._key(name)) or default

    def __getitem__(self, name):
        result = self.get(name)
        if result is None:
            raise KeyError(name)
        return result

    def __contains__(self, name):
        return self._key(name) in self._records

    def keys(self):
        return (str(k) for k in self._records.keys())

    def __iter__(self):
        return iter(self.keys())

    def values(self):
        return (URL(self, k) for k in self._records.keys())

    def items(self):
        return ((str(k), URL(self, k)) for k in self._records.keys())

    def __len__(self):
        return self._length()

    # IURLProvider

    is_valid = staticmethod(is_valid)

    def get_url(self, url):
        key = self._ids.get(url) if isinstance(url, str) else None
        return None if key is None else URL(self, key)

    def by_id(self, id):
        if id is None or id not in self._records:
            return None
        return URL(self, id)

    def ids_for(self, urls):
        result = BTrees.LLBTree.LLTreeSet()
        get = self._ids.get
        for url in urls:
            if isinstance(url, str):
                key = get(url)
                if key is not None:
                    result.insert(key)
        return result

    def add(self, url):
        if not is_valid(url):
            raise InvalidURLError('Not a valid URL: %r' % (url,))
        key = self._ids.get(url)
        if key is not None:
            return URL(self, key)
        obj = self._create(url)
        zope.event.notify(URLsAddedEvent(self, [obj]))
        return obj

    def add_multiple(self, urls):
        result, new, seen = [], [], set()
        get = self._ids.get
        for url in urls:
            if not is_valid(url) or url in seen:
                continue
            seen.add(url)
            key = get(url)
            if key is None:
                obj = self._create(url)
                new.append(obj)
            else:
                obj = URL(self, key)
            result.append(obj)
        if new:
            zope.event.notify(URLsAddedEvent(self, new))
        return result

    def add_ids(self, urls):
        result = BTrees.LLBTree.LLTreeSet()
        new = []
        get = self._ids.get
        for url in urls:
            if not is_valid(url):
                continue
            key = get(url)
            if key is None:
                obj = self._create(url)
                new.append(obj)
                key = obj.id
            result.insert(key)
        if new:
            zope.event.notify(URLsAddedEvent(self, new))
        return result

    def _create(self, url):
        # One event for all URLs of a call (by the callers): subscribers
        # such as the schedule then look themselves up once, not per URL.
        key = self._new_key()
        self._records[key] = (url,) + NEW_RECORD[1:]
        self._ids[url] = key
        self._length.change(1)
        return URL(self, key)

    def state_rows(self, ids):
        """`[url, state, reason]` for each key, as clients get them."""
        records = self._records
        for key in ids:
            record = records.get(key)
            if record is not None:
                yield [record[URL_], record[STATE], record[REASON]]

    def remove(self, url):
        if url.clients:
            raise ValueError('%r still has clients' % url)
        record = self._records.get(url.id)
        if record is None:
            return
        del self._records[url.id]
        del self._ids[record[URL_]]
        self._length.change(-1)
        zope.event.notify(URLRemovedEvent(url, record[STATE]))

    def _new_key(self):
        # Consecutive keys from a random start keep one transaction's new
        # URLs in few buckets; the random restart after a collision keeps
        # concurrent writers apart, as zope.intid does.
        key = getattr(self, '_v_nextkey', None)
        while key is None or key >= MAX_KEY or key in self._records:
            key = random.randrange(1, MAX_KEY)
        self._v_nextkey = key + 1
        return key
