"""The admins' pages of the LMS site in the ZMI, with zope.testbrowser:
dashboard, clients, a client, a URL, search, the site manager's
utilities, and the protection of the forms."""

import datetime
import json
import os
import time
import unittest

import transaction
import zope.component
import zope.component.hooks
import zope.testbrowser.wsgi

import gocept.lms.browser.clientpage
import gocept.lms.client
import gocept.lms.tests
from gocept.lms.interfaces import (
    IClientProvider, INotifications, ISchedule, ISynchronization,
    IURLProvider, DISABLED_BY_LMS)


T0 = datetime.datetime(2026, 4, 1, 8, 0, tzinfo=datetime.timezone.utc)
SITE = 'http://localhost/lms'


class AdminPagesTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        root = self.layer.getRootFolder()
        zope.component.hooks.setSite(root['lms'])
        clients = zope.component.getUtility(IClientProvider)
        urls = zope.component.getUtility(IURLProvider)
        fred = gocept.lms.client.Client('fred')
        fred.contact_name, fred.contact_email = 'Fred Webmaster', \
            'fred@example.com'
        fred.callback = 'http://fred.example/db/'
        clients.add(fred)
        wilma = gocept.lms.client.Client('wilma')
        wilma.contact_name, wilma.contact_email = 'Wilma', 'w@bedrock.example'
        clients.add(wilma)
        self.good, self.bad, self.new = urls.add_multiple([
            'http://www.example.com/good', 'http://www.example.com/<gone>',
            'http://other.example/new'])
        self.good.update_check('ok', T0, '200 Ok')
        self.bad.update_check('unavailable', T0, '404 Not Found <b>',
                              history=(T0.timestamp(), 3, 'http 404', True))
        fred.register_urls([self.good, self.bad, self.new])
        wilma.register_urls([self.good])
        # The checker took the two it checked: only the new one is due.
        schedule = zope.component.getUtility(ISchedule)
        # (Both are on www.example.com, in one shard; the new one is not.)
        until, taken = schedule.claim(
            time.time(), 2, 60, [schedule.shard(self.good.id).number])
        for key in taken:
            schedule.reschedule(key, until, time.time() + 86400)
        notifications = INotifications(fred)
        notifications.switch_off(DISABLED_BY_LMS, T0)
        notifications.failed = 20
        notifications.last_error = 'ConnectionRefusedError: refused'
        sync = ISynchronization(fred)
        sync.failures = 2
        sync.last_error = 'OSError: no route'
        self.keys = {u.url: u.id for u in (self.good, self.bad, self.new)}
        transaction.commit()
        zope.component.hooks.setSite(None)
        self.browser = zope.testbrowser.wsgi.Browser(
            wsgi_app=self.layer.make_wsgi_app())
        self.browser.handleErrors = False

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def site(self):
        """The site as the database has it now."""
        transaction.begin()
        return self.layer.getRootFolder()['lms']

    def utility(self, iface):
        return self.site().getSiteManager().getUtility(iface)

    def contents(self):
        return ' '.join(self.browser.contents.split())

    def login(self):
        self.browser.addHeader('Authorization', 'Basic mgr:mgrpw')

    # The dashboard

    def test_the_site_address_shows_the_dashboard_with_the_zmi_tabs(self):
        self.login()
        self.browser.open(SITE + '/')
        contents = self.contents()
        self.assertIn('Link Monitoring Server', contents)
        for tab in ('Dashboard', 'Clients', 'Search', 'Contents'):
            self.browser.getLink(tab)
        self.assertIn('<span class="value">3</span> URLs', contents)
        self.assertIn('<span class="value">1</span> '
                      '<span class="state-ok">ok</span>', contents)
        self.assertIn('<span class="value">1</span> '
                      '<span class="state-unavailable">unavailable</span>',
                      contents)
        self.assertIn('<span class="value">1</span> due for a check now',
                      contents)
        # No checker ran here.
        self.assertIn('bin/checker has published no figures', contents)
        # fred's syncs and pushes fail, wilma is fine
        self.assertIn('2 failed: OSError: no route', contents)
        self.assertIn('OFF (switched off by lms)', contents)
        self.assertIn('20 failed in a row: ConnectionRefusedError', contents)
        self.assertNotIn('wilma', contents)
        # the recent changes, newest first, with links to the URLs
        self.assertIn('http://www.example.com/&lt;gone&gt;', contents)
        self.assertLess(contents.index('example.com/&lt;gone&gt;'),
                        contents.index('example.com/good'))
        self.browser.getLink('http://www.example.com/good').click()
        self.assertIn('200 Ok', self.browser.contents)
        # The ZMI's breadcrumbs open the first tab: the dashboard.
        self.browser.open(SITE + '/@@SelectedManagementView.html')
        self.assertIn('Recent state changes', self.browser.contents)

    def test_the_dashboard_shows_the_checkers_figures(self):
        now = time.time()
        self.addCleanup(os.remove, self.layer.config['check-stats-file'])
        with open(self.layer.config['check-stats-file'], 'w') as f:
            json.dump({'started': now - 7200, 'updated': now - 2,
                       'in_flight': 7, 'checks': {'ok': 900, 'unknown': 100}},
                      f)
        self.login()
        self.browser.open(SITE + '/')
        contents = self.contents()
        self.assertRegex(contents, r'running</span> \(figures \d+ s old\), '
                         r'7 checks in flight')
        self.assertIn('1000 checks since it started', contents)
        self.assertIn('about 500 per hour on average', contents)
        with open(self.layer.config['check-stats-file'], 'w') as f:
            json.dump({'started': now - 7200, 'updated': now - 600}, f)
        self.browser.reload()
        self.assertIn('NOT RUNNING', self.browser.contents)

    def test_the_dashboard_tells_when_changes_wait_for_the_notifier(self):
        from gocept.lms.interfaces import IChangeJournal
        journal = self.utility(IChangeJournal)
        journal.take(1000)
        journal.record([self.keys['http://other.example/new']],
                       when=int((time.time() - 3600) * 1e6))
        transaction.commit()
        self.login()
        self.browser.open(SITE + '/')
        self.assertIn('NOT RUNNING?', self.browser.contents)
        self.assertIn('1 state changes wait', self.contents())

    def test_needs_a_login(self):
        self.browser.raiseHttpErrors = False
        self.browser.handleErrors = True
        for page in ('/', '/@@client.html?id=fred', '/@@search.html?q=x',
                     '/@@url.html?key=%d' % self.good.id):
            self.browser.open(SITE + page)
            self.assertEqual('401 Unauthorized',
                             self.browser.headers['status'], page)

    # The clients

    def test_clients_tab_lists_the_clients_a_page_at_a_time(self):
        self.login()
        self.browser.open(SITE + '/')
        self.browser.getLink('Clients').click()
        contents = self.contents()
        self.assertIn('2 clients', contents)
        self.assertIn('Fred Webmaster', contents)
        self.assertIn('OFF (by lms)', contents)
        self.browser.getControl('Notifications on').click()
        self.assertIn('Notifications to fred are on again', self.contents())
        self.assertTrue(INotifications(self.utility(IClientProvider)[
            'fred']).enabled)
        self.browser.getLink('wilma').click()
        self.assertIn('Client wilma', self.contents())

    def test_client_page_shows_the_client_and_its_urls(self):
        self.login()
        self.browser.open(SITE + '/@@client.html?id=fred')
        contents = self.contents()
        self.assertIn('Client fred', contents)
        self.assertIn('fred@example.com', contents)
        self.assertIn('http://fred.example/db/', contents)
        self.assertIn('2 failed since the last successful sync: OSError',
                      contents)
        self.assertIn('OFF, switched off by lms 2026-04-01 08:00 UTC',
                      contents)
        self.assertIn('20 failed in a row', contents)
        self.assertIn('@@client-status?client=fred', contents)
        for url in self.keys:
            self.assertIn(url.replace('<', '&lt;').replace('>', '&gt;'),
                          contents)
        self.assertIn('404 Not Found &lt;b&gt;', contents)
        self.browser.getLink('http://other.example/new').click()
        self.assertIn('waiting for its first check', self.contents())

    def test_client_page_filters_by_state(self):
        self.login()
        self.browser.open(SITE + '/@@client.html?id=fred')
        self.browser.getControl('State').value = ['unavailable']
        self.browser.getControl('Show').click()
        contents = self.contents()
        self.assertIn('/&lt;gone&gt;', contents)
        self.assertNotIn('example.com/good', contents)
        self.assertNotIn('other.example/new', contents)

    def test_client_page_pages_through_the_key_set(self):
        page_size = gocept.lms.browser.clientpage.PAGE_SIZE
        gocept.lms.browser.clientpage.PAGE_SIZE = 2
        self.addCleanup(setattr, gocept.lms.browser.clientpage,
                        'PAGE_SIZE', page_size)
        self.login()
        self.browser.open(SITE + '/@@client.html?id=fred')
        shown = [u for u in self.keys if u.replace('<', '&lt;').replace(
            '>', '&gt;') in self.browser.contents]
        self.assertEqual(2, len(shown))
        self.browser.getLink('Next page').click()
        rest = [u for u in self.keys if u.replace('<', '&lt;').replace(
            '>', '&gt;') in self.browser.contents]
        self.assertEqual(1, len(rest))
        self.assertEqual(set(self.keys), set(shown) | set(rest))
        self.assertRaises(LookupError, self.browser.getLink, 'Next page')
        self.browser.getLink('First page')

    def test_client_page_actions(self):
        self.login()
        self.browser.open(SITE + '/@@client.html?id=fred')
        self.browser.getControl('Sync at next run').click()
        self.assertIn('fred will be synced at the next run', self.contents())
        self.assertTrue(ISynchronization(
            self.utility(IClientProvider)['fred']).force)

        self.browser.getControl('Notifications on').click()
        self.assertIn('Notifications to fred are on again', self.contents())
        notifications = INotifications(self.utility(IClientProvider)['fred'])
        self.assertTrue(notifications.enabled)
        self.assertEqual(0, notifications.failed)

        schedule = self.utility(ISchedule)
        self.assertEqual([self.new.id], schedule.due(now=0))
        self.browser.getControl('Check these URLs now').click()
        self.assertIn('3 URLs of this page will be checked at once',
                      self.contents())
        schedule = self.utility(ISchedule)
        self.assertEqual(sorted(self.keys.values()),
                         sorted(schedule.due(now=0)))
        # Asking again changes nothing: the checks are pending.
        # Asking again adds nothing for the checked URLs, whose checks are
        # pending; the new one waits as before.
        self.browser.getControl('Check these URLs now').click()
        self.assertIn('1 URLs of this page will be checked at once (2 had',
                      self.contents())
        self.assertEqual(sorted(self.keys.values()),
                         sorted(self.utility(ISchedule).due(now=0)))

    def test_unregister_asks_first(self):
        sink = gocept.lms.tests.start_smtp_server()
        self.login()
        self.browser.open(SITE + '/@@client.html?id=fred')
        self.browser.getControl('Unregister...').click()
        self.assertIn('Unregister <strong>fred</strong>?', self.contents())
        self.assertIn('fred', self.utility(IClientProvider))
        self.browser.getLink('No, keep it').click()
        self.assertIn('fred', self.utility(IClientProvider))
        self.browser.getControl('Unregister...').click()
        self.browser.getControl('Yes, unregister fred').click()
        self.assertIn('Client fred is unregistered', self.contents())
        self.assertNotIn('fred', self.utility(IClientProvider))
        urls = self.utility(IURLProvider)
        # wilma's URL stays, fred's own are gone
        self.assertEqual(['http://www.example.com/good'],
                         [u.url for u in urls.values()])
        mail_from, recipients, message = sink.pop()
        self.assertEqual(['fred@example.com'], recipients)

    def test_unknown_client(self):
        self.login()
        self.browser.raiseHttpErrors = False
        self.browser.open(SITE + '/@@client.html?id=nobody')
        self.assertEqual('404 Not Found', self.browser.headers['status'])
        self.assertIn('No such client', self.browser.contents)

    # A URL

    def test_url_page(self):
        self.login()
        self.browser.open(SITE + '/@@url.html?key=%d' % self.bad.id)
        contents = self.contents()
        self.assertIn('http://www.example.com/&lt;gone&gt;', contents)
        self.assertIn('<td class="state-unavailable">unavailable</td>',
                      contents)
        self.assertIn('404 Not Found &lt;b&gt;', contents)
        self.assertIn('3 failed checks in a row since 2026-04-01 08:00 UTC; '
                      'the latest: http 404; failing long enough to count '
                      'as unavailable', contents)
        self.assertIn('not recorded per URL', contents)
        self.browser.getLink('fred').click()
        self.assertIn('Client fred', self.contents())

    def test_url_page_check_now(self):
        self.login()
        self.browser.open(SITE + '/@@url.html?url=http://www.example.com/good')
        self.assertIn('wilma', self.browser.contents)
        self.browser.getControl('Check now').click()
        self.assertIn('The URL will be checked at once', self.contents())
        self.assertIn(self.good.id, self.utility(ISchedule).due(now=0))
        self.browser.getControl('Check now').click()
        self.assertIn('A check of the URL is pending already',
                      self.contents())

    def test_unknown_url(self):
        self.login()
        self.browser.raiseHttpErrors = False
        self.browser.open(SITE + '/@@url.html?key=12')
        self.assertEqual('404 Not Found', self.browser.headers['status'])
        self.assertIn('No such URL', self.browser.contents)

    # Search

    def test_search_finds_urls_by_host_and_clients_by_contact(self):
        self.login()
        self.browser.open(SITE + '/')
        self.browser.getControl(name='q').value = 'example.com'
        self.browser.getControl('Search').click()
        contents = self.contents()
        self.assertIn('http://www.example.com/good', contents)
        self.assertIn('http://www.example.com/&lt;gone&gt;', contents)
        self.assertNotIn('other.example', contents)
        # fred's e-mail address is on example.com
        self.assertIn('Fred Webmaster', contents)
        self.assertNotIn('Wilma', contents)
        self.browser.getLink('http://www.example.com/good').click()
        self.assertIn('200 Ok', self.browser.contents)

    def test_search_for_a_whole_url_and_a_prefix(self):
        self.login()
        self.browser.open(SITE + '/@@search.html?q=http://other.example/new')
        self.assertIn('This URL is watched', self.browser.contents)
        self.browser.open(SITE + '/@@search.html?q=http://www.example.com/g')
        contents = self.contents()
        self.assertIn('http://www.example.com/good', contents)
        self.assertNotIn('gone', contents)
        self.assertIn('No clients found', contents)
        self.browser.open(SITE + '/@@search.html?q=bedrock')
        self.assertIn('wilma', self.browser.contents)
        self.assertIn('No URLs found', self.browser.contents)

    def test_search_pages_through_the_results(self):
        self.login()
        import gocept.lms.browser.search
        self.addCleanup(setattr, gocept.lms.browser.search, 'PAGE_SIZE',
                        gocept.lms.browser.search.PAGE_SIZE)
        gocept.lms.browser.search.PAGE_SIZE = 1
        # in the order of the index: by host, then by the hashes of the
        # URLs (the provider's index), so either of the two comes first
        pages = []
        self.browser.open(SITE + '/@@search.html?q=www.example.com')
        pages.append(self.browser.contents)
        self.browser.getLink('More').click()
        pages.append(self.browser.contents)
        self.assertEqual(
            [['/good' in page, 'gone' in page] for page in pages],
            [[True, False], [False, True]] if '/good' in pages[0]
            else [[False, True], [True, False]])

    # The utilities in the site manager

    def test_utilities_open_with_what_they_hold(self):
        self.login()
        base = SITE + '/++etc++site/default/'
        self.browser.open(base + 'clients')
        self.assertIn('Registered clients', self.browser.contents)
        self.browser.getLink('The clients, a page at a time').click()
        self.assertIn('Fred Webmaster', self.browser.contents)
        self.browser.open(base + 'urls')
        self.assertIn('URLs watched', self.browser.contents)
        self.browser.getLink('Find URLs by host or beginning').click()
        self.assertIn('<h1>Search</h1>', self.browser.contents)
        self.browser.open(base + 'schedule')
        self.assertIn('URLs due for a check now', self.browser.contents)
        # The site manager's listing leads there too.
        self.browser.open(base + 'clients/@@SelectedManagementView.html')
        self.assertIn('Registered clients', self.browser.contents)

    def test_the_site_offers_nothing_to_add(self):
        self.login()
        self.browser.open(SITE + '/@@contents.html')
        self.assertNotIn('Folder', self.browser.contents)
        self.assertNotIn('Error Logging', self.browser.contents)
        self.browser.open(SITE + '/@@+')
        self.assertNotIn('Folder', self.browser.contents)


class FormProtectionTest(unittest.TestCase):
    """A page of another site makes the admin's browser post a form, with
    the admin's credentials: refused, and nothing changes."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        root = self.layer.getRootFolder()
        zope.component.hooks.setSite(root['lms'])
        clients = zope.component.getUtility(IClientProvider)
        clients.add(gocept.lms.client.Client('fred'))
        INotifications(clients['fred']).switch_off(DISABLED_BY_LMS, T0)
        transaction.commit()
        zope.component.hooks.setSite(None)
        self.browser = zope.testbrowser.wsgi.Browser(
            wsgi_app=self.layer.make_wsgi_app())
        self.browser.addHeader('Authorization', 'Basic mgr:mgrpw')
        self.browser.raiseHttpErrors = False

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def fred(self):
        transaction.begin()
        site = self.layer.getRootFolder()['lms']
        return site.getSiteManager().getUtility(IClientProvider)['fred']

    def post(self, page, data, **headers):
        for name, value in headers.items():
            self.browser.addHeader(name, value)
        self.browser.post(SITE + page, data)
        return self.browser.headers['status']

    def test_a_post_from_another_site_is_refused(self):
        status = self.post('/@@overview.html',
                           'client=fred&enable-notifications=1',
                           Origin='http://evil.example')
        self.assertEqual('403 Forbidden', status)
        self.assertIn('only be sent from the pages of the LMS',
                      self.browser.contents)
        self.assertFalse(INotifications(self.fred()).enabled)

    def test_origin_null_is_refused(self):
        status = self.post('/@@client.html', 'id=fred&force-sync=1',
                           Origin='null')
        self.assertEqual('403 Forbidden', status)
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_a_post_that_does_not_say_where_it_comes_from_is_refused(self):
        status = self.post('/@@client.html', 'id=fred&force-sync=1')
        self.assertEqual('403 Forbidden', status)
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_another_port_or_scheme_is_another_site(self):
        for origin in ('http://localhost:8081', 'https://localhost',
                       'http://localhost.evil.example'):
            status = self.post('/@@client.html', 'id=fred&force-sync=1',
                               Origin=origin)
            self.assertEqual('403 Forbidden', status, origin)
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_a_referer_of_another_site_is_refused(self):
        status = self.post('/@@client.html', 'id=fred&force-sync=1',
                           Referer='http://evil.example/localhost/lms/')
        self.assertEqual('403 Forbidden', status)
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_the_zmis_own_forms_are_covered_too(self):
        status = self.post('/@@contents.html',
                           'ids:list=fred&container_delete_button=Delete',
                           Origin='http://evil.example')
        self.assertEqual('403 Forbidden', status)

    def test_a_post_from_the_lms_itself_goes_through(self):
        status = self.post('/@@client.html', 'id=fred&force-sync=1',
                           Origin='http://localhost')
        self.assertEqual('200 Ok', status)
        self.assertTrue(ISynchronization(self.fred()).force)
        self.browser.open(SITE + '/@@client.html?id=fred')
        self.browser.getControl('Notifications on').click()
        self.assertTrue(INotifications(self.fred()).enabled)

    def test_a_get_changes_nothing(self):
        self.browser.open(SITE + '/@@client.html?id=fred&force-sync=1')
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_admin_pages_may_not_be_framed(self):
        for page in ('/', '/@@client.html?id=fred', '/@@search.html',
                     '/@@contents.html'):
            self.browser.open(SITE + page)
            self.assertEqual('DENY', self.browser.headers['X-Frame-Options'])
            self.assertEqual("frame-ancestors 'none'",
                             self.browser.headers['Content-Security-Policy'])

    def test_the_clients_status_page_may_be_framed(self):
        import gocept.lms.browser.status
        url = gocept.lms.browser.status.status_url(self.fred())
        self.browser.open('http://localhost/lms/' + url.split('/lms/')[1])
        self.assertIn('Links of fred', self.browser.contents)
        self.assertNotIn('X-Frame-Options', self.browser.headers)
        self.assertNotIn('Content-Security-Policy', self.browser.headers)
        self.assertIn('/@@/gocept.lms.css', self.browser.contents)


class FaviconTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()

    def test_favicon_is_served_and_nothing_is_logged(self):
        import zope.error.interfaces
        import zope.securitypolicy.interfaces
        # Anonymous visitors may see nothing in production (etc/site.zcml;
        # ftesting.zcml grants zope.View), and still get the icon.
        zope.securitypolicy.interfaces.IPrincipalPermissionManager(
            self.layer.getRootFolder()).denyPermissionToPrincipal(
                'zope.View', 'zope.anybody')
        transaction.commit()
        browser = zope.testbrowser.wsgi.Browser(
            wsgi_app=self.layer.make_wsgi_app())
        browser.open('http://localhost/favicon.ico')
        self.assertEqual('200 Ok', browser.headers['status'])
        self.assertEqual('image/png', browser.headers['Content-Type'])
        self.assertTrue(browser.contents.startswith(b'\x89PNG'))
        errors = zope.component.getUtility(
            zope.error.interfaces.IErrorReportingUtility,
            context=self.layer.getRootFolder())
        self.assertEqual([], errors.getLogEntries())
