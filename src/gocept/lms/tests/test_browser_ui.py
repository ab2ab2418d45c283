"""The admins' pages in a real browser: headless Chromium (Debian's
`chromium` package), driven by Playwright, against bin/web and a ZEO
server on 127.0.0.1. It logs in, opens the dashboard, a client, a URL and
a search, checks a URL now, and leaves a screenshot of each page in
var/screenshots/ (ignored by git) for people to look at.

.ci/run installs Chromium, so this runs in CI; elsewhere, without
Chromium or Playwright, it is skipped (and fails under CI=true)."""

import importlib.util
import os
import signal
import subprocess
import tempfile
import unittest
import xmlrpc.client

import gocept.lms.tests
from gocept.lms.tests import processes
from gocept.lms.tests.servers import SMTPSink, password_from


CHROMIUM = '/usr/bin/chromium'
SCREENSHOTS = os.path.join(processes.CHECKOUT, 'var', 'screenshots')
ADMIN = ('admin', 'browser-test-password')
ADMIN_SECRET = 'browser test admin secret'
WIDTH = 1280

SITE_ZCML = '''\
<configure xmlns="http://namespaces.zope.org/zope">
  <!-- The LMS as etc/site.zcml has it, and a known admin login. -->
  <include file="{site}" />
  <principal id="lms.test.admin" title="Test admin"
             login="{login}" password_manager="Plain Text"
             password="{password}" />
  <grant role="zope.Manager" principal="lms.test.admin" />
</configure>
'''


def missing():
    """What keeps this test from running here, or None."""
    if importlib.util.find_spec('playwright') is None:
        return 'the playwright package is not installed'
    if not os.path.exists(CHROMIUM):
        return '%s is missing (apt-get install chromium)' % CHROMIUM
    return None


class BrowserTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        reason = missing()
        if reason:
            if os.environ.get('CI'):
                self.fail('CI must run the browser test: ' + reason)
            self.skipTest(reason)
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)
        self.smtp = SMTPSink().start()
        self.addCleanup(self.smtp.stop)
        self.port = processes.free_port()
        site_zcml = os.path.join(self.tmp, 'site.zcml')
        with open(site_zcml, 'w') as f:
            f.write(SITE_ZCML.format(
                site=os.path.join(processes.CHECKOUT, 'etc', 'site.zcml'),
                login=ADMIN[0], password=ADMIN[1]))
        conf = processes.write_zope_conf(
            self.tmp, self.zeo, processes.lms_settings(
                self.tmp, self.port, self.smtp.port, ADMIN_SECRET,
                check_stats_file=os.path.join(self.tmp, 'stats.json')),
            site_zcml)
        self.log = open(os.path.join(self.tmp, 'web.log'), 'ab')
        self.web = subprocess.Popen(
            [os.path.join(processes.BIN, 'web'), '-C', conf],
            cwd=processes.CHECKOUT, stdout=self.log,
            stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_web)
        processes.wait_for_port('127.0.0.1', self.port, timeout=60)
        self.base = 'http://127.0.0.1:%d/lms/' % self.port
        self.register_client()
        os.makedirs(SCREENSHOTS, exist_ok=True)

    def stop_web(self):
        self.web.send_signal(signal.SIGTERM)
        try:
            self.web.wait(20)
        except subprocess.TimeoutExpired:
            self.web.kill()
            self.web.wait()
        self.log.close()

    def register_client(self):
        lms = xmlrpc.client.ServerProxy(self.base)
        lms.registerClient(ADMIN_SECRET, 'fred', 'http://127.0.0.1:9/db/',
                           'Fred Webmaster', 'fred@example.com')
        password = password_from(self.smtp.pop()[2])
        lms.registerURLs('fred', password, [
            'http://www.example.com/',
            'http://www.example.com/news/2026/a-rather-long-address-of-'
            'an-article-that-must-wrap-instead-of-widening-the-page.html',
            # no place to break a line: it wraps anywhere
            'http://www.example.com/?session=' + 'x0' * 120,
            'https://docs.example.org/guide/',
            'http://blog.example.com/post'])

    def screenshot(self, page, name):
        # Pages fit a 1280 px window: nothing scrolls sideways.
        width = page.evaluate('document.documentElement.scrollWidth')
        self.assertLessEqual(width, WIDTH, name)
        page.screenshot(path=os.path.join(SCREENSHOTS, name + '.png'),
                        full_page=True)

    def test_an_admin_finds_and_steers_a_client_and_a_url(self):
        from playwright.sync_api import sync_playwright
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=[
                    '--no-sandbox', '--disable-background-networking',
                    '--disable-component-update', '--disable-sync'])
            try:
                context = browser.new_context(
                    http_credentials=dict(username=ADMIN[0],
                                          password=ADMIN[1]),
                    viewport=dict(width=WIDTH, height=900))
                self.walk(context.new_page())
            finally:
                browser.close()

    def walk(self, page):
        page.goto(self.base)
        self.assertIn('Link Monitoring Server', page.inner_text('body'))
        self.assertRegex(page.inner_text('.figures'), r'5\s+URLs')
        self.screenshot(page, 'dashboard')

        page.click('.itemViews a:text-is("Clients")')
        self.screenshot(page, 'clients')
        page.click('a:text-is("fred")')
        self.assertIn('Client fred', page.inner_text('h1'))
        page.click('input[value="Sync at next run"]')
        self.assertIn('fred will be synced at the next run',
                      page.inner_text('.message'))
        self.screenshot(page, 'client')

        page.click('a:has-text("docs.example.org")')
        self.assertIn('waiting for its first check',
                      page.inner_text('body'))
        page.click('input[value="Check now"]')
        self.assertIn('will be checked at once', page.inner_text('.message'))
        self.screenshot(page, 'url')

        page.click('.itemViews a:text-is("Search")')
        page.fill('input[name="q"]', 'example.com')
        page.click('input[type="submit"][value="Search"]')
        results = page.inner_text('table.lms-table')
        self.assertIn('http://blog.example.com/post', results)
        self.assertNotIn('docs.example.org', results)
        self.screenshot(page, 'search')
