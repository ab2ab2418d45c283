"""URLs and the URL provider."""

import datetime
import hashlib
import os
import random
import re

import BTrees.LLBTree
import BTrees.LOBTree
import BTrees.OLBTree
import BTrees.Length
import persistent
import zope.component
import zope.container.contained
import zope.event
import zope.interface

import gocept.lms.interfaces
import gocept.lms.prefetch
from gocept.lms.interfaces import InvalidURLError
from gocept.lms.urlsearch import host_of


MAX_URL_LENGTH = 2048

# URL keys fit in 31 bits, so the schedule can pack (time, key) into one
# 64-bit integer; two billion keys leave room for many million URLs.
KEY_BITS = 31
MAX_KEY = 2 ** KEY_BITS

# New keys are handed out in blocks of this many (see URLProvider._new_key).
KEY_BLOCK = 1024


def key_order(slot):
    """The offset in its block of the `slot`-th key handed out from it:
    first the even offsets, then the odd ones."""
    half = KEY_BLOCK // 2
    return 2 * slot if slot < half else 2 * (slot - half) + 1


# An absolute URI: a scheme, a colon, then printable ASCII without spaces,
# and not an empty authority ("http://"). A regular expression rather than
# urllib.parse: the syncer validates every URL of every client every day.
VALID_URL = re.compile(
    r'[A-Za-z][A-Za-z0-9+.\-]*:(?!//(?:[/?#]|$))[!-~]+\Z')


def is_valid(url):
    """See IURLProvider.is_valid."""
    return (isinstance(url, str) and len(url) <= MAX_URL_LENGTH
            and VALID_URL.match(url) is not None)


@zope.interface.implementer(gocept.lms.interfaces.IURLStatesChangedEvent)
class URLStatesChangedEvent:

    def __init__(self, provider, changes):
        self.provider = provider
        self.changes = changes


@zope.interface.implementer(gocept.lms.interfaces.IURLsAddedEvent)
class URLsAddedEvent:

    def __init__(self, provider, urls):
        self.provider = provider
        self.urls = urls


@zope.interface.implementer(gocept.lms.interfaces.IURLsRemovedEvent)
class URLsRemovedEvent:

    def __init__(self, provider, removed):
        self.provider = provider
        self.removed = removed


# A URL's record in URLProvider._info, the part of a URL that checks
# change. Times are whole seconds since the epoch (UTC) or None; the state
# is its index in STATES, which keeps records small.
STATE, REASON, LAST_CHECK, LAST_STATE_CHANGE, HISTORY = range(5)
STATE_INDEX = {state: i for i, state in enumerate(
    gocept.lms.interfaces.STATES)}
NEW_RECORD = (STATE_INDEX[gocept.lms.interfaces.UNKNOWN],
              gocept.lms.interfaces.UNKNOWN, None, None, None)


def to_datetime(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def to_seconds(when):
    return None if when is None else int(when.timestamp())


def _blake(text, salt=b''):
    """Eight bytes of BLAKE2b of the ASCII string `text`, keyed with
    `salt` (none if empty)."""
    return hashlib.blake2b(text.encode('ascii'), digest_size=8,
                           key=salt).digest()


def url_hash(url):
    """A signed 64-bit hash of a URL string."""
    return int.from_bytes(_blake(url), 'little', signed=True)


# A key of the URL index is a hash of the URL's host (`urlsearch.host_of`)
# in its top HOST_BITS, then a hash of the whole string: the URLs of one
# host are one range of the index. 63 bits in all, so keys are positive.
# The hashes are keyed with a secret of the URL provider (`_salt`, random,
# in the database): 43 bits are few enough that a client could otherwise
# compute strings whose keys are taken, and have every search of the
# admins read them (`_collisions`, which a search reads whole).
HOST_BITS = 20
STRING_BITS = 43


def _digest(text, bits, salt):
    return int.from_bytes(_blake(text, salt), 'little') >> (64 - bits)


def index_key(url, salt):
    """The key of the URL string `url` in a URL index keyed with `salt`."""
    return (_digest(host_of(url), HOST_BITS, salt) << STRING_BITS) | (
        _digest(url, STRING_BITS, salt))


def host_range(host, salt):
    """`(low, high)`: the keys of a URL index keyed with `salt` that URLs
    on `host` (as `urlsearch.host_of` gives it) may have, both included.
    Hosts whose hashes are equal share it."""
    low = _digest(host, HOST_BITS, salt) << STRING_BITS
    return low, low + (1 << STRING_BITS) - 1


def new_salt():
    return os.urandom(16)


@zope.interface.implementer(gocept.lms.interfaces.IURL)
class URL(zope.container.contained.Contained):
    """A handle on one URL of a URL provider.

    It holds no data of its own: every attribute reads the provider's
    records, every change writes them there. Two handles on the same URL
    are equal.
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
        return self.__parent__._info[self.id]

    @property
    def url(self):
        return self.__parent__._urls[self.id]

    state = property(
        lambda self: gocept.lms.interfaces.STATES[self._record[STATE]])
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
        self.__parent__.record_checks([(self.id, state, when, reason,
                                        history)])


# Sizes of the BTrees' buckets (leaves) and inner nodes. A write rewrites
# a whole bucket, and a bucket split rewrites its parent node: trees that
# are written at random places get small buckets, and every tree that grows
# gets small nodes, so that what a write costs does not grow with the tree.
# benchmarks/RESULTS.md has the measurements behind these numbers.

class URLStrings(BTrees.LOBTree.LOBTree):
    """key -> URL string. Written when URLs come or go, never by checks.

    New keys are close to each other (see URLProvider._new_key), so a call
    that adds URLs fills buckets at one place instead of rewriting buckets
    all over the tree."""

    max_leaf_size = 30
    max_internal_size = 32


class Subscribers(BTrees.LOBTree.LOBTree):
    """key -> sorted tuple of client ids; written like URLStrings."""

    max_leaf_size = 30
    max_internal_size = 32


class Records(BTrees.LOBTree.LOBTree):
    """key -> record. Written when a check changes what is known of a URL
    (state, reason, failure history), in no particular order of keys."""

    max_leaf_size = 8
    max_internal_size = 32


class URLIndex(BTrees.LLBTree.LLBTree):
    """`index_key` of the URL string -> key.

    The URLs of one host are together, as the hash of the host comes
    first: a call that registers URLs on a few hosts writes a bucket per
    host rather than one per URL, and the URL search index (urlsearch.py)
    finds a host's URLs here instead of keeping a set of its own. The
    hashes instead of the string keep the string stored once (in
    URLStrings) and make entries a few bytes each. Small buckets, as the
    hosts a call writes are anywhere in the index; small inner nodes, too:
    a bucket split rewrites its parent, and inner nodes do not merge
    concurrent changes, so small ones make two writers meet less often."""

    max_leaf_size = 16
    max_internal_size = 32


class KeySet(BTrees.LLBTree.LLTreeSet):
    """A set of URL keys (a client's subscriptions): buckets large enough
    that the syncer reads a client's set in few loads, small enough that
    adding URLs does not rewrite much."""

    max_leaf_size = 250
    max_internal_size = 250


@zope.interface.implementer(gocept.lms.interfaces.IURLProvider)
class URLProvider(zope.container.contained.Contained, persistent.Persistent):
    """All URLs of a site, in BTrees keyed by integers.

    Each BTree is written by the work it serves, so that a write costs what
    changed and processes working at once write different objects:

    `_urls`       key -> URL string; written when URLs are added or removed
    `_index`      hashes of the URL's host and string -> key; the same
                          (`index_key`: a host's URLs are together)
    `_collisions` URL string -> key, for the rare URL whose index key is
                          taken
    `_info`       key -> (state, reason, last check, last state change,
                          failure history); written by the checker, and
                          only when a check changes one of them
    `_clients`    key -> sorted tuple of client ids; written by
                          subscriptions

    Buckets merge concurrent changes of different keys, so two checker
    batches, or a checker batch and a subscription, do not conflict.

    Keys are 31-bit integers, handed out in blocks at random places (as
    zope.intid's are random): concurrent transactions adding URLs do not
    fight over a counter, and each fills buckets at its own place.
    A key is not given out again while the schedule may still hold an entry
    for a removed URL with that key.
    """

    def __init__(self):
        self._salt = new_salt()
        self._urls = URLStrings()
        self._index = URLIndex()
        self._collisions = BTrees.OLBTree.OLBTree()
        self._info = Records()
        self._clients = Subscribers()
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
        return self._key(name) in self._urls

    def keys(self):
        return (str(k) for k in self._urls.keys())

    def __iter__(self):
        return iter(self.keys())

    def values(self):
        return (URL(self, k) for k in self._urls.keys())

    def items(self):
        return ((str(k), URL(self, k)) for k in self._urls.keys())

    def __len__(self):
        return self._length()

    # IURLProvider

    is_valid = staticmethod(is_valid)

    def _lookup(self, url, position=None):
        """The key of the URL string `url` (whose `index_key` is
        `position`, if given), or None."""
        key = self._index.get(index_key(url, self._salt) if position is None
                              else position)
        if key is not None and self._urls.get(key) == url:
            return key
        # Either unknown, or its hash belongs to another URL.
        if len(self._collisions):
            return self._collisions.get(url)
        return None

    def _prefetch_lookups(self, urls):
        """The `index_key` of each of the URL strings `urls`, by string;
        for many lookups at once, what they read fetched from the storage
        in few round trips."""
        positions = {url: index_key(url, self._salt) for url in urls}
        if len(positions) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_keys(
                self._index, positions.values())
            gocept.lms.prefetch.prefetch_keys(self._urls, [
                key for key in map(self._index.get, positions.values())
                if key is not None])
        return positions

    def get_url(self, url):
        key = self._lookup(url) if is_valid(url) else None
        return None if key is None else URL(self, key)

    def by_id(self, id):
        if id is None or id not in self._urls:
            return None
        return URL(self, id)

    def ids_for(self, urls):
        result = BTrees.LLBTree.LLTreeSet()
        urls = [url for url in urls if is_valid(url)]
        positions = self._prefetch_lookups(urls)
        for url in urls:
            key = self._lookup(url, positions[url])
            if key is not None:
                result.insert(key)
        return result

    def add(self, url):
        if not is_valid(url):
            raise InvalidURLError('Not a valid URL: %r' % (url,))
        return self.add_multiple([url])[0]

    def add_multiple(self, urls):
        return [URL(self, key) for key in self._add(urls)[0]]

    def add_ids(self, urls):
        result = BTrees.LLBTree.LLTreeSet()
        result.update(self._add(urls)[0])
        return result

    def _add(self, urls):
        """Keys of the valid `urls`, in order, without duplicates; unknown
        URLs are created. Returns (keys, new keys)."""
        urls = [url for url in urls if is_valid(url)]
        positions = self._prefetch_lookups(urls)
        keys, new, seen = [], [], set()
        for url in urls:
            if url in seen:
                continue
            seen.add(url)
            key = self._lookup(url, positions[url])
            if key is None:
                key = self._create(url, positions[url])
                new.append(key)
            keys.append(key)
        if new:
            # One event per call: subscribers such as the schedule look
            # themselves up once, not per URL.
            zope.event.notify(URLsAddedEvent(
                self, [URL(self, key) for key in new]))
        return keys, new

    def _create(self, url, position=None):
        key = self._new_key()
        self._index_string(key, url, position)
        self._urls[key] = url
        self._info[key] = NEW_RECORD
        self._length.change(1)
        return key

    def _index_string(self, key, url, position=None):
        """Make the URL string `url` (whose `index_key` is `position`, if
        given) find `key`."""
        if position is None:
            position = index_key(url, self._salt)
        if position in self._index:
            self._collisions[url] = key
        else:
            self._index[position] = key

    def _new_key(self):
        # Keys come from blocks of KEY_BLOCK keys at a random place, as
        # zope.intid's do: concurrent writers stay apart, and one process's
        # new URLs land in few buckets. Within a block the even offsets go
        # out first, then the odd ones (see key_order): BTrees split a full
        # bucket in the middle, so ascending keys would leave every bucket
        # half empty, and the odd keys fill the halves up again.
        block, slot = getattr(self, '_v_keys', (None, KEY_BLOCK))
        schedule = getattr(self, '_v_schedule', None)
        if schedule is None:
            schedule = self._v_schedule = zope.component.queryUtility(
                gocept.lms.interfaces.ISchedule, context=self)
        while True:
            if slot >= KEY_BLOCK:
                block, slot = random.randrange(1, MAX_KEY - KEY_BLOCK), 0
            key = block + key_order(slot)
            slot += 1
            if key in self._urls or (
                    schedule is not None and schedule.is_stale(key)):
                slot = KEY_BLOCK  # taken: somebody else works here
                continue
            self._v_keys = block, slot
            return key

    def record_checks(self, checks):
        """See IURLProvider."""
        gone, changes = set(), []
        states = gocept.lms.interfaces.STATES
        for key, state, when, reason, history in checks:
            index = STATE_INDEX.get(state)
            if index is None:
                raise ValueError('Unknown state %r' % state)
            record = self._info.get(key)
            if record is None:
                gone.add(key)
                continue
            history = None if history is None else tuple(history)
            if (record[STATE] == index and record[REASON] == reason
                    and record[HISTORY] == history):
                continue  # nothing new: the record stays as it is
            when = to_seconds(when)
            changed = record[STATE] != index
            self._info[key] = (
                index, reason, when,
                when if changed else record[LAST_STATE_CHANGE], history)
            if changed:
                changes.append((URL(self, key), states[record[STATE]]))
        if changes:
            zope.event.notify(URLStatesChangedEvent(self, changes))
        return gone

    def check_items(self, keys):
        """`(key, url, history)` of each key that is still there."""
        urls, info = self._urls, self._info
        keys = list(keys)
        if len(keys) >= gocept.lms.prefetch.PREFETCH_FROM:
            # A claim's keys come from all over both trees once the
            # checks' times have drifted apart.
            gocept.lms.prefetch.prefetch_trees([(urls, keys), (info, keys)])
        for key in keys:
            url = urls.get(key)
            if url is not None:
                yield key, url, info[key][HISTORY]

    def _values(self, tree, ids):
        """`(key, value)` of `tree` for the keys in `ids` it holds."""
        ids = sorted(ids)
        if len(ids) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_keys(tree, ids)
        for key in ids:
            value = tree.get(key)
            if value:
                yield key, value

    def strings(self, ids):
        """See IURLProvider."""
        return self._values(self._urls, ids)

    def subscribers(self, ids):
        """See IURLProvider."""
        return self._values(self._clients, ids)

    def state_rows(self, ids, unknown=None):
        """`[url, state, reason]` for each key, as clients get them.

        With a set as `unknown`, the keys of URLs not checked yet are
        added to it."""
        urls, info = self._urls, self._info
        states = gocept.lms.interfaces.STATES
        not_checked = NEW_RECORD[STATE]
        ids = list(ids)
        if len(ids) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_keys(urls, ids)
            gocept.lms.prefetch.prefetch_keys(info, ids)
        for key in ids:
            url = urls.get(key)
            if url is not None:
                record = info[key]
                if unknown is not None and record[STATE] == not_checked:
                    unknown.add(key)
                yield [url, states[record[STATE]], record[REASON]]

    def host_entries(self, host, after=None):
        """`(position, key)` of the URLs that may be on `host` (as
        `urlsearch.host_of` gives it), by position, after the position
        `after` (None: from the first). URLs of other hosts whose hash
        is the same come too: the caller compares the strings. The rare
        URLs kept in `_collisions` come last, at positions after the
        range."""
        low, high = host_range(host, self._salt)
        if after is None or after < low:
            yield from self._index.items(min=low, max=high)
        elif after < high:
            yield from self._index.items(min=after, max=high,
                                         excludemin=True)
        if len(self._collisions):
            strings = (string for string in self._collisions.keys()
                       if host_of(string) == host)
            for position, string in enumerate(strings, high + 1):
                if after is None or position > after:
                    yield position, self._collisions[string]

    def prefetch(self, ids):
        """See IURLProvider."""
        ids = sorted(ids)
        if len(ids) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_trees(
                [(self._urls, ids), (self._info, ids), (self._clients, ids)])

    def remove(self, url):
        self.remove_many([url])

    def remove_many(self, urls):
        """See IURLProvider."""
        urls = list({url.id: url for url in urls}.values())
        self.prefetch(url.id for url in urls)
        for url in urls:
            if url.clients:
                raise ValueError('%r still has clients' % url)
        strings = [(url, self._urls.get(url.id)) for url in urls]
        strings = [(url, string) for url, string in strings
                   if string is not None]
        if len(strings) >= gocept.lms.prefetch.PREFETCH_FROM:
            gocept.lms.prefetch.prefetch_keys(
                self._index,
                [index_key(string, self._salt) for url, string in strings])
        removed = []
        states = gocept.lms.interfaces.STATES
        for url, string in strings:
            key = url.id
            record = self._info[key]
            del self._urls[key]
            del self._info[key]
            if self._collisions.get(string) == key:
                del self._collisions[string]
            else:
                del self._index[index_key(string, self._salt)]
            removed.append((url, states[record[STATE]], string))
        if removed:
            self._length.change(-len(removed))
            zope.event.notify(URLsRemovedEvent(self, removed))
