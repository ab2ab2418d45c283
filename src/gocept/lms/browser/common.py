"""What the admins' pages share: a base class, formatting, links."""

import datetime
import urllib.parse

import zope.component
import zope.publisher.browser
import zope.security.proxy
import zope.traversing.browser.absoluteurl

import gocept.lms.client
import gocept.lms.prefetch
import gocept.lms.sync
from gocept.lms.clock import when
from gocept.lms.interfaces import INotifications, ISynchronization


def when_micro(microseconds, unknown=''):
    if microseconds is None:
        return unknown
    return when(datetime.datetime.fromtimestamp(
        microseconds / 1e6, datetime.timezone.utc))


def when_seconds(seconds, unknown=''):
    if seconds is None:
        return unknown
    return when(datetime.datetime.fromtimestamp(
        seconds, datetime.timezone.utc))


def state_class(state):
    """The CSS class of a state; lms.css colours them, on these pages and
    on the clients' status page alike."""
    return 'state-' + state.replace(' ', '-')


def client_states(clients):
    """`(client, INotifications, ISynchronization)` of the `clients`.

    A fresh process would load each client and its state one round trip
    after the other: ask the storage for each layer at once."""
    values = list(clients)
    gocept.lms.prefetch.prefetch_annotated(values, (
        gocept.lms.client.NOTIFICATIONS_KEY,
        gocept.lms.sync.SYNCHRONIZATION_KEY))
    return [(c, INotifications(c), ISynchronization(c)) for c in values]


def url_rows(page, urls, keys):
    """Rows for the URLs `keys` (those still there), read in batches:
    key, link, URL, state, its CSS class, reason, last check."""
    keys = list(keys)
    strings = dict(urls.strings(keys))
    records = {row[0]: row for row in urls.state_rows(keys)}
    rows = []
    for key in keys:
        url = strings.get(key)
        if url is None:
            continue
        _, state, reason = records[url]
        # The batch read above brought the record into the cache.
        handle = urls.by_id(key)
        rows.append(dict(
            key=key, href=page.url_href(key), url=url, state=state,
            css=state_class(state), reason=reason,
            last_check=when(handle.last_check)))
    return rows


class Page(zope.publisher.browser.BrowserView):
    """An admin page of the LMS site.

    The page's permission guards it; the components behind the site are
    read unproxied, and the template gets plain values. Requests that
    change something are POSTs; security.py refuses those that come from
    another site before a page sees them.
    """

    message = ''

    @property
    def site(self):
        return zope.security.proxy.removeSecurityProxy(self.context)

    def utility(self, iface):
        return zope.component.queryUtility(iface, context=self.site)

    def site_url(self):
        return zope.traversing.browser.absoluteurl.absoluteURL(
            self.context, self.request)

    def page_url(self, name, **params):
        url = '%s/@@%s' % (self.site_url(), name)
        params = {k: v for k, v in params.items() if v not in (None, '')}
        return url + ('?' + urllib.parse.urlencode(params) if params else '')

    def client_href(self, client_id):
        return self.page_url('client.html', id=client_id)

    def url_href(self, key):
        return self.page_url('url.html', key=key)

    def posted(self, name):
        """Whether the request is a POST of the button `name`."""
        return self.request.method == 'POST' and name in self.request.form

    def text(self, name):
        value = self.request.form.get(name, '')
        return value.strip() if isinstance(value, str) else ''

    def update(self):
        pass

    def __call__(self):
        self.update()
        return self.index()
