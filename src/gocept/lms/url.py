"""URLs and the URL provider."""

import random
import urllib.parse

import BTrees.LOBTree
import BTrees.OLBTree
import BTrees.LLBTree
import BTrees.Length
import persistent
import zope.container.contained
import zope.event
import zope.interface
from ZODB.POSException import ConflictError

import gocept.lms.interfaces
from gocept.lms.interfaces import InvalidURLError


MAX_URL_LENGTH = 2048


def is_valid(url):
    """See IURLProvider.is_valid."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return False
    if not url.isascii() or not url.isprintable() or ' ' in url:
        return False
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    scheme = parsed.scheme
    if not scheme or not scheme[0].isalpha():
        return False
    # An absolute URI needs something after the scheme: "http:" alone is
    # not a link, "mailto:fred@example.com" is.
    return bool(parsed.netloc or parsed.path)


@zope.interface.implementer(gocept.lms.interfaces.IURLStateChangedEvent)
class URLStateChangedEvent:

    def __init__(self, url, old_state):
        self.url = url
        self.old_state = old_state


@zope.interface.implementer(gocept.lms.interfaces.IURLAddedEvent)
class URLAddedEvent:

    def __init__(self, url):
        self.url = url


@zope.interface.implementer(gocept.lms.interfaces.IURLRemovedEvent)
class URLRemovedEvent:

    def __init__(self, url):
        self.url = url


# Attributes of a URL that the checker writes, and those that the
# client-URL relation writes. Concurrent changes to the two groups merge.
CHECK_ATTRIBUTES = frozenset([
    'state', 'reason', 'last_check', 'last_state_change', 'history'])
RELATION_ATTRIBUTES = frozenset(['clients'])


@zope.interface.implementer(gocept.lms.interfaces.IURL)
class URL(zope.container.contained.Contained, persistent.Persistent):

    state = gocept.lms.interfaces.UNKNOWN
    reason = gocept.lms.interfaces.UNKNOWN
    last_check = None
    last_state_change = None
    # The checker's flap-damping memory; opaque to everything else.
    history = None
    clients = frozenset()

    def __init__(self, url, id):
        self.url = url
        self.id = id
        self.__name__ = str(id)

    def __repr__(self):
        return '<URL %s %r>' % (self.id, self.url)

    def update_check(self, state, when, reason):
        if state not in gocept.lms.interfaces.STATES:
            raise ValueError('Unknown state %r' % state)
        old_state = self.state
        self.last_check = when
        self.reason = reason
        if state != old_state:
            self.state = state
            self.last_state_change = when
            zope.event.notify(URLStateChangedEvent(self, old_state))

    def _p_resolveConflict(self, old, committed, new):
        # The checker (state) and the syncer or the API (subscriptions)
        # write the same URL at times. Their changes touch different
        # attributes and are merged; two changes of the same group conflict
        # as usual and the later transaction is retried.
        old, committed, new = (dict(s) for s in (old, committed, new))
        result = dict(committed)
        changed_by_committed = {
            k for k in set(old) | set(committed)
            if old.get(k, _missing) != committed.get(k, _missing)}
        changed_by_new = {
            k for k in set(old) | set(new)
            if old.get(k, _missing) != new.get(k, _missing)}
        for group in (CHECK_ATTRIBUTES, RELATION_ATTRIBUTES):
            if changed_by_committed & group and changed_by_new & group:
                raise ConflictError
        if (changed_by_committed | changed_by_new) - (
                CHECK_ATTRIBUTES | RELATION_ATTRIBUTES):
            raise ConflictError
        for k in changed_by_new:
            if k in new:
                result[k] = new[k]
            else:
                result.pop(k, None)
        return result


_missing = object()


@zope.interface.implementer(gocept.lms.interfaces.IURLProvider)
class URLProvider(zope.container.contained.Contained, persistent.Persistent):
    """All URLs of a site, keyed by a random 63-bit integer.

    Random keys (as zope.intid uses) let concurrent transactions add URLs
    without fighting over a counter, and integer keys make the client-URL
    relation compact LLTreeSets whose set operations run in C.
    """

    def __init__(self):
        self._urls = BTrees.LOBTree.LOBTree()
        self._ids = BTrees.OLBTree.OLBTree()
        self._length = BTrees.Length.Length()

    # IEnumerableMapping, by traversal name

    def _key(self, name):
        try:
            return int(name)
        except (TypeError, ValueError):
            return None

    def get(self, name, default=None):
        key = self._key(name)
        if key is None:
            return default
        return self._urls.get(key, default)

    def __getitem__(self, name):
        result = self.get(name, _missing)
        if result is _missing:
            raise KeyError(name)
        return result

    def __contains__(self, name):
        return self.get(name, _missing) is not _missing

    def keys(self):
        return (str(k) for k in self._urls.keys())

    def __iter__(self):
        return iter(self.keys())

    def values(self):
        return self._urls.values()

    def items(self):
        return ((str(k), v) for k, v in self._urls.items())

    def __len__(self):
        return self._length()

    # IURLProvider

    is_valid = staticmethod(is_valid)

    def get_url(self, url):
        key = self._ids.get(url) if isinstance(url, str) else None
        return None if key is None else self._urls[key]

    def by_id(self, id):
        return self._urls.get(id)

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
        existing = self.get_url(url)
        if existing is not None:
            return existing
        key = self._new_key()
        obj = URL(url, key)
        obj.__parent__ = self
        self._urls[key] = obj
        self._ids[url] = key
        self._length.change(1)
        zope.event.notify(URLAddedEvent(obj))
        return obj

    def add_multiple(self, urls):
        result = []
        seen = set()
        for url in urls:
            if not is_valid(url) or url in seen:
                continue
            seen.add(url)
            result.append(self.add(url))
        return result

    def add_ids(self, urls):
        result = BTrees.LLBTree.LLTreeSet()
        get = self._ids.get
        for url in urls:
            if not is_valid(url):
                continue
            key = get(url)
            if key is None:
                key = self.add(url).id
            result.insert(key)
        return result

    def remove(self, url):
        if url.clients:
            raise ValueError('%r still has clients' % url)
        if self._urls.get(url.id) is not url:
            return
        del self._urls[url.id]
        del self._ids[url.url]
        self._length.change(-1)
        zope.event.notify(URLRemovedEvent(url))

    def _new_key(self):
        # Consecutive keys from a random start keep one transaction's new
        # URLs in few buckets; the random restart after a collision keeps
        # concurrent writers apart, as zope.intid does.
        key = getattr(self, '_v_nextkey', None)
        while key is None or key in self._urls:
            key = random.randrange(1, 2 ** 62)
        self._v_nextkey = key + 1
        return key
