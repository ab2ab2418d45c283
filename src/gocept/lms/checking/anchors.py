"""Fragments: whether a page has the place a URL's #fragment names.

`http.check_http` fetches the page (GET, at most `anchor_body_cap` bytes),
`read` collects the names of the places in it (every `id`, and `name` of
`<a>`), `judge` turns the page's outcome and those names into the URL's
outcome. A `PageCache` lets URLs that differ only in their fragment share
one fetch.
"""

import asyncio
import codecs
import collections
import html.parser
import time
import urllib.parse

from gocept.lms.checking import policy as p
from gocept.lms.checking.policy import Outcome


def wanted(raw_fragment):
    """`(anchor, note)` for a URL's raw fragment: the name to look for (or
    None), and what to add to the reason when nothing is looked for."""
    if not raw_fragment:
        return None, ''
    fragment, text, directive = raw_fragment.partition(':~:')
    note = '; text fragment not checked' if text else ''
    if not fragment:
        return None, note
    return urllib.parse.unquote(fragment), note


def is_html(resp):
    content_type = resp.headers.get('Content-Type', '').lower()
    return content_type.startswith(('text/html', 'application/xhtml+xml'))


class _Names(html.parser.HTMLParser):

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.names = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == 'id' or (name == 'name' and tag == 'a')):
                self.names.add(value)

    handle_startendtag = handle_starttag


Found = collections.namedtuple('Found', 'names complete read')


async def read(resp, cap):
    """Read at most `cap` bytes of an HTML answer; return `Found`: the
    names of its places, whether the whole page was read, bytes read."""
    parser = _Names()
    charset = resp.charset or 'utf-8'
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors='replace')
    except LookupError:
        decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')
    got = 0
    try:
        while got < cap:
            chunk = await resp.content.read(min(65536, cap - got))
            if not chunk:
                break
            got += len(chunk)
            parser.feed(decoder.decode(chunk))
        complete = resp.content.at_eof()
    finally:
        if resp.content.at_eof():
            resp.release()
        else:
            resp.close()
    parser.feed(decoder.decode(b'', final=True))
    return Found(frozenset(parser.names), complete, got)


def judge(outcome, found, anchor):
    """The outcome of a URL with #`anchor`, from its page's `outcome` and
    what `read` `found` in the page (None: not read, no HTML page)."""
    if outcome.kind != p.KIND_HTTP or not 200 <= (outcome.status or 0) < 300:
        return outcome  # the page itself failed (or redirected home ...)
    if found is None:
        return outcome._replace(
            detail=f'{outcome.detail}; anchor #{anchor} not checked '
                   f'(not an HTML page)')
    if anchor in found.names:
        return outcome._replace(
            detail=f'{outcome.detail}; anchor #{anchor} found')
    if not found.complete:
        return outcome._replace(
            detail=f'{outcome.detail}; anchor #{anchor} not checked '
                   f'(not in the first {found.read} bytes)')
    return Outcome(p.KIND_NO_ANCHOR,
                   f'anchor #{anchor} not found ({outcome.detail})',
                   outcome.status)


class PageCache:
    """Pages fetched for their anchors, shared by URLs that differ only in
    their fragment: one fetch per page every `ttl` seconds (a checker round
    checks such URLs close together, as they were registered together).
    A fetch under way is shared too. At most `size` pages are kept."""

    def __init__(self, ttl=600.0, size=2000, clock=time.monotonic):
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._pages = collections.OrderedDict()
        self.fetches = 0

    async def get(self, page, fetch):
        """`(outcome, found)` of `page`, from `fetch()` or the cache."""
        key = str(page)
        now = self.clock()
        entry = self._pages.get(key)
        if entry is None or now - entry[0] >= self.ttl:
            self.fetches += 1
            entry = (now, asyncio.ensure_future(fetch()))
            self._pages[key] = entry
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        try:
            # shielded: one caller given up on does not cancel the others
            return await asyncio.shield(entry[1])
        except Exception:
            if self._pages.get(key) is entry:
                del self._pages[key]
            raise
