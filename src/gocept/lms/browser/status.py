"""The status page a client embeds for its editors (getInfoFrameURL).

Its address carries a token made with the LMS's secret key, so it shows a
client's link states only to whoever got the address from the LMS (the
client, through the authenticated getInfoFrameURL call), without a login.
"""

import collections
import urllib.parse

import zope.component
import zope.container.traversal
import zope.publisher.browser
import zope.security.proxy

import gocept.lms.interfaces
import gocept.lms.secrets
import gocept.lms.settings
from gocept.lms.browser.common import state_class, when
from gocept.lms.browser.security import allow_framing
from gocept.lms.interfaces import INotifications, ISynchronization


PURPOSE = 'client-status'

# A client with 100,000 links and a bad day must not get a page of
# 100,000 rows.
MAX_ROWS = 500


def status_url(client):
    settings = gocept.lms.settings.get()
    base = settings.public_url
    if not base.endswith('/'):
        base += '/'
    return '%s@@client-status?%s' % (base, urllib.parse.urlencode({
        'client': client.id,
        'token': gocept.lms.secrets.sign(
            PURPOSE, client.id, settings.secret_key_file)}))


class ClientStatus(zope.publisher.browser.BrowserView):

    client = None
    lms_name = 'LMS'

    def update(self):
        # The client's site shows this page in a frame, at an address of
        # its own that the LMS does not know (its callback may be an
        # internal one). The page has no buttons, so a frame cannot make
        # anybody click anything on it: any site may frame it.
        allow_framing(self.request)
        settings = gocept.lms.settings.get()
        self.lms_name = settings.lms_name
        client_id = self.request.form.get('client', '')
        token = self.request.form.get('token', '')
        # Trusted code: the token, not the security policy, decides who
        # may see this page; the template gets plain values only.
        site = zope.security.proxy.removeSecurityProxy(self.context)
        clients = zope.component.getUtility(
            gocept.lms.interfaces.IClientProvider, context=site)
        self.client = clients.get(client_id) if isinstance(
            client_id, str) else None
        if self.client is None or not gocept.lms.secrets.verify(
                PURPOSE, client_id, token, settings.secret_key_file):
            self.client = None
            self.request.response.setStatus(403)
            return
        counts = collections.Counter()
        problems = []
        for url in self.client.urls:
            counts[url.state] += 1
            if url.state not in (gocept.lms.interfaces.OK,
                                 gocept.lms.interfaces.UNKNOWN):
                problems.append(url)
        order = {s: i for i, s in enumerate(gocept.lms.interfaces.STATES)}
        problems.sort(key=lambda u: (order[u.state], u.url))
        # Plain values only: the template sees no persistent object.
        self.client_id = self.client.id
        self.counts = [dict(state=state, count=counts[state],
                            css=state_class(state))
                       for state in gocept.lms.interfaces.STATES
                       if counts[state]]
        self.total = sum(counts.values())
        self.problems = [
            dict(url=u.url, state=u.state, reason=u.reason,
                 css=state_class(u.state),
                 last_check=when(u.last_check))
            for u in problems[:MAX_ROWS]]
        self.more = max(0, len(problems) - MAX_ROWS)
        self.last_sync = when(ISynchronization(self.client).last) or 'not yet'
        self.notifications_on = INotifications(self.client).enabled

    def __call__(self):
        self.update()
        return self.index()


class RootTraverser(zope.container.traversal.ContainerTraverser):
    """Browser traversal from the root folder that lets anybody reach an
    LMS site, so the status page needs no login, and the root's public
    views (/favicon.ico). Every view on the site
    still checks its own permission (the ZMI asks for a login as before)."""

    def publishTraverse(self, request, name):
        item = zope.security.proxy.removeSecurityProxy(self.context).get(name)
        if gocept.lms.interfaces.ILMS.providedBy(item):
            return item
        if item is None:
            # Views of the root folder, such as /favicon.ico, without the
            # look into the folder that needs zope.View; each view checks
            # its own permission.
            view = zope.component.queryMultiAdapter(
                (self.context, request), name=name)
            if view is not None:
                return view
        return super().publishTraverse(request, name)
