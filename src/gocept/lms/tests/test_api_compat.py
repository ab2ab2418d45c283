"""An old client against the new LMS, end to end over sockets.

`LinkChecker` behaves like the gocept.linkchecker Plone add-on: it refuses
to work unless checkConnection answers 2, maps every state it receives to
a colour and fails on a state string it does not know, and serves its
callback with its own check of id and password.
"""

import datetime
import threading
import unittest
import xmlrpc.client
import xmlrpc.server

import transaction
import zope.component
import zope.component.hooks

import gocept.lms.interfaces
import gocept.lms.sync
import gocept.lms.tests
from gocept.lms.tests.servers import ADMIN_SECRET, LMSFixture, LOOPBACK


COLOURS = {
    'ok': 'green',
    'temporary unavailable': 'orange',
    'unavailable': 'red',
    'unsupported protocol': 'blue',
    'unknown': 'grey',
}


class UnknownState(Exception):
    pass


class ProtocolMismatch(Exception):
    pass


class CallbackHandler(xmlrpc.server.SimpleXMLRPCRequestHandler):
    rpc_paths = ('/portal_linkchecker/database/',)


class LinkChecker:
    """The client side: a link database, the LMS settings, a callback."""

    def __init__(self, links):
        self.links = list(links)
        self.colours = {}
        self.calls = []
        self.client_id = self.password = self.lms_url = None
        self.server = xmlrpc.server.SimpleXMLRPCServer(
            (LOOPBACK, 0), requestHandler=CallbackHandler,
            logRequests=False, allow_none=False)
        self.server.register_function(
            self.xmlrpc_getAllLinks, 'xmlrpc_getAllLinks')
        self.server.register_function(
            self.updateManyStates, 'updateManyStates')
        self.callback = 'http://%s:%d/portal_linkchecker/database/' % (
            LOOPBACK, self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    # What the site's admin configures

    def configure(self, lms_url, client_id, password):
        self.lms_url = lms_url
        self.client_id = client_id
        self.password = password

    def lms(self):
        return xmlrpc.client.ServerProxy(self.lms_url)

    def connect(self):
        with self.lms() as lms:
            version = lms.checkConnection(self.client_id, self.password)
        if version != 2:
            raise ProtocolMismatch(version)

    def register_links(self):
        self.connect()
        with self.lms() as lms:
            self.update(lms.registerURLs(
                self.client_id, self.password, self.links))

    def update(self, states):
        for url, state, reason in states:
            if state not in COLOURS:
                raise UnknownState(state)
            self.colours[url] = (COLOURS[state], reason)

    # The callback the LMS calls

    def _authenticate(self, client_id, password):
        if (client_id, password) != (self.client_id, self.password):
            raise xmlrpc.client.Fault(1, 'Unauthorized')

    def xmlrpc_getAllLinks(self, client_id, password):
        self._authenticate(client_id, password)
        self.calls.append('xmlrpc_getAllLinks')
        # Site databases hold duplicates and junk.
        return self.links + self.links[:1] + ['', 'javascript:void(0)x y']

    def updateManyStates(self, client_id, password, states):
        self._authenticate(client_id, password)
        self.calls.append('updateManyStates %d' % len(states))
        self.update(states)
        return True


class CompatibilityTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.lms = LMSFixture().setUp()
        self.site = LinkChecker([
            'http://www.example.com/', 'http://www.example.com/gone',
            'ftp://ftp.example.com/pub/', 'gopher://example.com/'])

    def tearDown(self):
        self.site.stop()
        self.lms.tearDown()
        gocept.lms.tests.doctest_teardown()

    def in_lms(self):
        transaction.begin()
        zope.component.hooks.setSite(self.layer.getRootFolder()['lms'])

    def checker_says(self, url, state, reason):
        self.in_lms()
        urls = zope.component.getUtility(gocept.lms.interfaces.IURLProvider)
        urls.get_url(url).update_check(
            state, datetime.datetime.now(datetime.timezone.utc), reason)
        transaction.commit()

    def test_end_to_end(self):
        with self.lms.proxy() as admin:
            admin.registerClient(ADMIN_SECRET, 'plone', self.site.callback,
                                 'Site Admin', 'admin@example.com')
        mail = self.lms.smtp.pop()[2]
        password = gocept.lms.tests.servers.password_from(mail)
        self.site.configure(self.lms.url, 'plone', password)

        self.site.register_links()
        # Nothing checked yet: nothing to show.
        self.assertEqual({}, self.site.colours)

        self.checker_says('http://www.example.com/', 'ok', '200 OK')
        self.checker_says('http://www.example.com/gone', 'unavailable',
                          '404 Not Found')
        self.checker_says('gopher://example.com/', 'unsupported protocol',
                          'no handler for gopher')
        self.site.register_links()
        self.assertEqual({
            'http://www.example.com/': ('green', '200 OK'),
            'http://www.example.com/gone': ('red', '404 Not Found'),
            'gopher://example.com/': ('blue', 'no handler for gopher'),
        }, self.site.colours)

        # The site drops a link and gains one; a forced sync brings the
        # LMS up to date and sends every state.
        self.site.links.remove('http://www.example.com/gone')
        self.site.links.append('https://new.example.com/')
        self.site.colours.clear()
        with self.site.lms() as lms:
            self.assertTrue(lms.forceSynchronization('plone', password))

        self.in_lms()
        results, failures = gocept.lms.sync.run()
        self.assertEqual([], failures)
        self.assertEqual(['plone'], [r.client_id for r in results])
        self.assertEqual(['xmlrpc_getAllLinks', 'updateManyStates 4'],
                         self.site.calls)
        self.assertEqual({
            'http://www.example.com/': ('green', '200 OK'),
            'gopher://example.com/': ('blue', 'no handler for gopher'),
            'ftp://ftp.example.com/pub/': ('grey', 'unknown'),
            'https://new.example.com/': ('grey', 'unknown'),
        }, self.site.colours)
        with self.site.lms() as lms:
            self.assertEqual([], lms.getURLStates(
                'plone', password, ['http://www.example.com/gone']))

        # The force flag is spent: the next run leaves the site alone.
        self.in_lms()
        results, failures = gocept.lms.sync.run()
        self.assertEqual(([], []), (results, failures))

    def test_refuses_an_lms_with_another_protocol(self):
        site = self.site
        site.configure(self.lms.url, 'plone', 'x')
        with self.assertRaises(xmlrpc.client.ProtocolError):
            site.connect()  # not registered: 401

    def test_unknown_state_strings_are_an_error_for_the_client(self):
        with self.assertRaises(UnknownState):
            self.site.update([['http://www.example.com/', 'OK', '']])
