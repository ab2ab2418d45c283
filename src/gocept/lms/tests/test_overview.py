"""The Clients tab of the LMS site in the ZMI (@@overview.html), driven
with zope.testbrowser."""

import unittest

import transaction
import zope.component
import zope.component.hooks
import zope.testbrowser.wsgi

import gocept.lms.client
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.interfaces import INotifications, ISynchronization


class OverviewTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        root = self.layer.getRootFolder()
        zope.component.hooks.setSite(root['lms'])
        clients = zope.component.getUtility(IClientProvider)
        fred = gocept.lms.client.Client('fred')
        fred.contact_name, fred.contact_email = 'Fred', 'fred@example.com'
        fred.callback = 'http://fred.example/db/'
        clients.add(fred)
        urls = zope.component.getUtility(IURLProvider)
        fred.register_urls(urls.add_multiple(
            ['http://a.example/', 'http://b.example/']))
        INotifications(fred).enabled = False
        INotifications(fred).failed = 20
        transaction.commit()
        self.browser = zope.testbrowser.wsgi.Browser(
            wsgi_app=self.layer.make_wsgi_app())
        self.browser.handleErrors = False

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def fred(self):
        """fred as the database has him now (requests reset the site)."""
        transaction.begin()
        site = self.layer.getRootFolder()['lms']
        return site.getSiteManager().getUtility(IClientProvider)['fred']

    def contents(self):
        return ' '.join(self.browser.contents.split())

    def login(self):
        self.browser.addHeader('Authorization', 'Basic mgr:mgrpw')

    def test_needs_a_login(self):
        self.browser.raiseHttpErrors = False
        self.browser.handleErrors = True
        self.browser.open('http://localhost/lms/@@overview.html')
        self.assertEqual('401 Unauthorized', self.browser.headers['status'])

    def test_shows_clients_and_steers_them(self):
        self.login()
        self.browser.open('http://localhost/lms/@@overview.html')
        contents = self.contents()
        self.assertIn('1 clients', contents)
        self.assertIn('fred', contents)
        self.assertIn('Fred<br /> <small>fred@example.com</small>', contents)
        self.assertIn('OFF (by lms)', contents)
        self.assertIn('20 failed in a row', contents)

        self.browser.getControl('Notifications on').click()
        self.assertIn('Notifications to fred are on again',
                      self.browser.contents)
        self.browser.getControl('Sync next run').click()
        self.assertIn('(forced for the next run)', self.browser.contents)

        fred = self.fred()
        self.assertTrue(INotifications(fred).enabled)
        self.assertEqual(0, INotifications(fred).failed)
        self.assertTrue(ISynchronization(fred).force)

    def test_a_get_changes_nothing(self):
        self.login()
        self.browser.open('http://localhost/lms/@@overview.html'
                          '?client=fred&force-sync=1')
        self.assertFalse(ISynchronization(self.fred()).force)

    def test_is_a_tab_of_the_site_in_the_zmi(self):
        self.login()
        self.browser.open('http://localhost/lms/@@contents.html')
        self.browser.getLink('Clients').click()
        self.assertIn('<h1>Clients</h1>', self.browser.contents)
