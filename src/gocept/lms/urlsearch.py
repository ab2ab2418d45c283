"""Finding URLs by host or by the beginning of the URL.

The URL provider keys its index by a hash of the URL string: it finds a
URL by its whole string and by nothing else. This index sorts URLs by
host, the host name read backwards so that subdomains follow their
domain::

    http://www.example.com:8080/news/?page=2  is on  com.example.www:8080

It keeps the sorted set of the hosts; the URLs of each host it finds in
the URL provider's index, which keeps a host's URLs together (url.py,
`index_key`). A search for a host and its subdomains is a range of hosts;
a search for a beginning with a path reads the URLs of that one host and
compares their strings. Either way it reads what may match, a bounded
number at a time, never the whole index. urlsearch.txt tells the story.

Why hosts and not whole URLs: every registration of a new URL writes the
index. Keyed by whole URLs, a new URL lands at its own place in a large
sorted tree and rewrites a bucket there; keyed by host, the URLs a client
registers at once write one place per host, and only the first URL of a
host writes the set of hosts.
"""

import re

import BTrees.LLBTree
import BTrees.OOBTree
import persistent
import transaction
import zope.component
import zope.container.contained
import zope.interface

import gocept.lms.interfaces
import gocept.lms.prefetch
from gocept.lms.interfaces import IURLProvider, IURLSearch


# Characters of a host name (backwards, with port) the index keeps; longer
# ones share their set with those that start alike.
PREFIX = 64

SEPARATOR = b'\x00'

# URLs one search call reads at most before it hands back a cursor: what
# a request costs, however rare the matches are.
EXAMINE = 5000
# URL strings read from the provider at once.
CHUNK = 250

SCHEME = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*\Z')
NETLOC_END = re.compile(r'[/?#]')
# A query that starts like `mailto:` (and not like `example.com:8080`)
# is the beginning of URLs without a host.
OPAQUE = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*:')
HOST_PORT = re.compile(r'[^/:]*:\d*(?:/|\Z)')


def reverse_host(host):
    return '.'.join(reversed(host.split('.')))


def _split_netloc(netloc):
    """`(host in lower case, port text)` of a URL's authority."""
    hostport = netloc.rpartition('@')[2]
    if hostport.startswith('['):  # an IPv6 address
        host, _, port = hostport[1:].partition(']')
        port = port[1:]
    else:
        host, _, port = hostport.partition(':')
    return host.lower(), port


def _split(url):
    """`(scheme, netloc, rest)` of a URL with an authority, else None."""
    scheme, sep, rest = url.partition('://')
    if not sep or not SCHEME.match(scheme):
        return None
    end = NETLOC_END.search(rest)
    if end is None:
        return scheme.lower(), rest, ''
    return scheme.lower(), rest[:end.start()], rest[end.start():]


def _form(host, port, rest):
    form = reverse_host(host)
    if port:
        form += ':' + port
    return form + (rest if rest.startswith('/') else '/' + rest)


def search_form(url):
    """The form of the URL string `url` that the index is ordered by.

    URLs without an authority (mailto:, news:) keep their string, after a
    space, which sorts before every host."""
    parts = _split(url)
    if parts is None:
        return ' ' + url
    scheme, netloc, rest = parts
    return _form(*_split_netloc(netloc), rest)


def cut(form):
    """The part of a search form the index sorts by: the host and port
    (at most PREFIX characters), or for a URL without a host its scheme."""
    if form.startswith(' '):
        return form[:form.index(':') + 1]
    return form[:form.index('/')][:PREFIX]


def host_of(url):
    """The host (and port) of the URL string `url` as the index sorts it:
    `cut(search_form(url))`."""
    return cut(search_form(url))


def cursor(host, position):
    """Where a search stopped: at `position` (url.URLProvider.host_entries)
    of `host`."""
    return (host.encode('ascii') + SEPARATOR
            + position.to_bytes(8, 'big')).hex()


def parse_cursor(text):
    """`(host, position)` of a cursor, or None."""
    try:
        data = bytes.fromhex(text)
        if len(data) < 9 or data[-9:-8] != SEPARATOR:
            return None
        return data[:-9].decode('ascii'), int.from_bytes(data[-8:], 'big')
    except (ValueError, UnicodeDecodeError):
        return None


class Query:
    """What a search string asks for: the beginnings of search forms
    (`forms`) and the scheme a URL must have (None: any)."""

    def __init__(self, text):
        text = text.strip()
        self.scheme = None
        parts = _split(text)
        if parts is not None:
            # The beginning of URLs: the host counts whole, what follows
            # it may stop anywhere.
            self.scheme, netloc, rest = parts
            self.forms = [_form(*_split_netloc(netloc), rest)]
            return
        if OPAQUE.match(text) and not HOST_PORT.match(text):
            self.forms = [' ' + text]
            return
        hostport, slash, path = text.partition('/')
        host, port = _split_netloc(hostport)
        host = host.strip('.')
        if slash or port:
            # example.com/news/ or example.com:8080: one host, any scheme
            self.forms = [_form(host, port, slash + path)]
        else:
            # The host, its subdomains, the host with any port
            backwards = reverse_host(host)
            self.forms = [backwards + '/', backwards + '.', backwards + ':']

    def ranges(self):
        """`(low, high)` of the host names (as the index has them) that may
        match, `high` excluded, in the order of the index."""
        result = []
        for form in self.forms:
            if form.startswith(' ') or '/' in form or len(form) > PREFIX:
                # One host (whatever the path), or one scheme without host
                low = cut(form if form.startswith(' ') or '/' in form
                          else form + '/')
                result.append((low, low + '\x00'))
            else:
                # A host that goes on: its subdomains, its ports
                result.append((form, form + '\x7f'))
        return sorted(result)

    def matches(self, url):
        if self.scheme is not None and not url.lower().startswith(
                self.scheme + '://'):
            return False
        form = search_form(url)
        return any(form.startswith(f) for f in self.forms)


class HostNames(BTrees.OOBTree.OOTreeSet):
    """Host names (backwards, with port) of the URLs, as `host_of` gives
    them. Written when a URL of a new host comes; a host stays when its
    last URL goes (deleting it could lose the URL that another
    transaction adds to that host at the same time)."""

    max_leaf_size = 30
    max_internal_size = 32


class Hosts(BTrees.OOBTree.OOBTree):
    """Generation 8's index: host name -> HostKeys. Read by evolve9 only,
    which replaces it with HostNames."""


class HostKeys(BTrees.LLBTree.LLTreeSet):
    """Generation 8's set of the keys of one host's URLs (see Hosts)."""


@zope.interface.implementer(IURLSearch)
class URLSearchIndex(zope.container.contained.Contained,
                     persistent.Persistent):

    def __init__(self):
        self._hosts = HostNames()

    def index(self, key, url):
        self.index_many([(key, url)])

    def index_many(self, items):
        """index() each `(key, url)` of `items`: note their hosts. The URL
        provider's index has the URLs already."""
        hosts = {host_of(url) for key, url in items}
        if len(hosts) > 1:
            gocept.lms.prefetch.prefetch_keys(self._hosts, hosts)
        for host in hosts:
            if host not in self._hosts:
                self._hosts.insert(host)

    def unindex(self, key, url):
        self.unindex_many([(key, url)])

    def unindex_many(self, items):
        """unindex() each `(key, url)` of `items`: nothing to do, as the
        URL provider's index forgets the URLs and hosts stay
        (HostNames)."""

    def _candidates(self, query, start):
        """`(host, position, key)` in the ranges of `query`, after
        `start`."""
        urls = zope.component.getUtility(IURLProvider, context=self)
        start_host, start_position = start or (None, None)
        for low, high in query.ranges():
            if start_host is not None:
                if start_host >= high:
                    continue
                low = max(low, start_host)
            for host in self._hosts.keys(min=low, max=high, excludemax=True):
                after = start_position if host == start_host else None
                for position, key in urls.host_entries(host, after):
                    yield host, position, key

    def search(self, query, after=None, limit=50):
        """See IURLSearch."""
        query = Query(query)
        urls = zope.component.getUtility(IURLProvider, context=self)
        candidates = self._candidates(
            query, parse_cursor(after) if after else None)

        def next_chunk():
            return [item for _, item in zip(range(CHUNK), candidates)]

        found, examined = [], 0
        chunk = next_chunk()
        while chunk:
            strings = dict(urls.strings([key for _, _, key in chunk]))
            for host, position, key in chunk:
                url = strings.get(key)
                # A host whose hash another host has shares its range.
                if (url is not None and host_of(url) == host
                        and query.matches(url)):
                    found.append(key)
                    if len(found) >= limit:
                        return found, cursor(host, position)
            examined += len(chunk)
            last, chunk = chunk[-1], next_chunk()
            if chunk and examined >= EXAMINE:
                return found, cursor(*last[:2])
        return found, None

    def build(self, urls, savepoint_every=20000):
        """Note the host of every URL of the URL provider `urls` (schema
        evolution); a savepoint every so many URLs bounds the memory it
        takes."""
        count = 0
        for key, url in urls._urls.items():
            host = host_of(url)
            if host not in self._hosts:
                self._hosts.insert(host)
            count += 1
            if not count % savepoint_every:
                transaction.savepoint(True)
        return count


def _index(context):
    # None on a site not evolved to generation 6 yet.
    return zope.component.queryUtility(IURLSearch, context=context)


@zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
def index_added_urls(event):
    index = _index(event.provider)
    if index is not None:
        index.index_many([(url.id, url.url) for url in event.urls])


@zope.component.adapter(gocept.lms.interfaces.IURLsRemovedEvent)
def unindex_removed_urls(event):
    index = _index(event.provider)
    if index is not None:
        index.unindex_many(
            [(url.id, string) for url, _, string in event.removed])
