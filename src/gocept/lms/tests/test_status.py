"""The client status page (getInfoFrameURL) over a real socket."""

import datetime
import unittest
import urllib.error
import urllib.parse
import urllib.request

import transaction
import zope.component
import zope.component.hooks

import gocept.lms.browser.status
import gocept.lms.client
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.tests.servers import serve_lms


T0 = datetime.datetime(2026, 4, 1, 8, 0, tzinfo=datetime.timezone.utc)


class StatusPageTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        # the site the LMS creates on first start
        zope.component.hooks.setSite(self.layer.getRootFolder()['lms'])
        clients = zope.component.getUtility(IClientProvider)
        for id in ('fred', 'wilma'):
            clients.add(gocept.lms.client.Client(id))
        urls = zope.component.getUtility(IURLProvider)
        good, bad, new = urls.add_multiple([
            'http://a.example/', 'http://b.example/<gone>',
            'http://c.example/'])
        good.update_check('ok', T0, '200 OK')
        bad.update_check('unavailable', T0, '404 Not Found <script>')
        clients['fred'].register_urls([good, bad, new])
        clients['wilma'].register_urls([good])
        transaction.commit()
        self.server = serve_lms(self.layer)
        self.fred = clients['fred']
        self.wilma = clients['wilma']

    def tearDown(self):
        self.server.stop()
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def fetch(self, url):
        # The configured public address is another port: ask this server.
        parts = urllib.parse.urlsplit(url)
        url = self.server.url + parts.path.lstrip('/') + '?' + parts.query
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as response:
                return response.status, response.read().decode('utf-8')
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode('utf-8')

    def test_the_signed_address_shows_the_clients_problems(self):
        status, body = self.fetch(
            gocept.lms.browser.status.status_url(self.fred))
        self.assertEqual(200, status, body[-3000:])
        self.assertIn('Links of fred', body)
        self.assertIn('3 links monitored', body)
        self.assertIn('1 ok', body)
        self.assertIn('1 unavailable', body)
        self.assertIn('1 unknown', body)
        # only problems are listed, escaped
        self.assertIn('http://b.example/&lt;gone&gt;', body)
        self.assertIn('404 Not Found &lt;script&gt;', body)
        self.assertNotIn('<script>', body)
        self.assertNotIn('http://a.example/', body)

    def test_a_wrong_or_foreign_token_is_refused(self):
        fred_url = gocept.lms.browser.status.status_url(self.fred)
        wilma_url = gocept.lms.browser.status.status_url(self.wilma)
        wilma_token = urllib.parse.parse_qs(
            urllib.parse.urlsplit(wilma_url).query)['token'][0]
        for url in [
                fred_url.replace('token=', 'token=0'),
                fred_url.split('&')[0],
                fred_url.split('token=')[0] + 'token=' + wilma_token,
                fred_url.replace('client=fred', 'client=nobody')]:
            status, body = self.fetch(url)
            self.assertEqual(403, status, url)
            self.assertIn('not valid', body)
            self.assertNotIn('b.example', body)

    def test_no_login_needed_where_anonymous_has_no_permission(self):
        # etc/site.zcml grants anonymous nothing (ftesting.zcml grants
        # zope.View): deny it here, as in production.
        import zope.securitypolicy.interfaces
        root = self.layer.getRootFolder()
        for obj in (root, root['lms']):
            zope.securitypolicy.interfaces.IPrincipalPermissionManager(
                obj).denyPermissionToPrincipal('zope.View', 'zope.anybody')
        transaction.commit()
        status, body = self.fetch(
            gocept.lms.browser.status.status_url(self.fred))
        self.assertEqual(200, status)
        self.assertIn('Links of fred', body)
        # The way to the site is open, the ZMI still is not.
        for path in ('lms/@@contents.html', '@@contents.html',
                     'lms/++etc++site/@@contents.html'):
            status, body = self.fetch('http://x/%s?' % path)
            self.assertEqual(401, status, path)
