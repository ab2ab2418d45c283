"""Failed logins over real sockets: client passwords, the admin secret and
ZMI logins are counted, logged in summaries and throttled (throttle.py).

The test server listens on 127.0.0.1; an attacker "elsewhere" connects
from 127.0.0.2, another loopback address.
"""

import base64
import http.client
import re
import unittest
import unittest.mock
import xmlrpc.client

import zope.testing.loggingsupport

import gocept.lms.api
import gocept.lms.browser.login
import gocept.lms.secrets
import gocept.lms.settings
import gocept.lms.tests
import gocept.lms.throttle
from gocept.lms.tests.servers import ADMIN_SECRET, LMSFixture
from gocept.lms.tests.servers import XMLRPCAssertions


ELSEWHERE = '127.0.0.2'


class FromAddress(xmlrpc.client.Transport):
    """An XML-RPC transport that connects from `address`."""

    def __init__(self, address):
        super().__init__()
        self.address = address

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.source_address = (self.address, 0)
        return connection


class LoginTestCase(XMLRPCAssertions, unittest.TestCase):

    layer = gocept.lms.tests.functional_layer
    config = {}

    def setUp(self):
        self.lms = LMSFixture(**self.config).setUp()
        self.log = zope.testing.loggingsupport.InstalledHandler('gocept.lms')
        self.password = self.lms.register_client('fred')
        self.proxies = []

    def tearDown(self):
        for proxy in self.proxies:
            proxy('close')()
        self.log.uninstall()
        self.lms.tearDown()
        gocept.lms.tests.doctest_teardown()

    def api(self, address=None):
        proxy = self.lms.proxy(
            transport=FromAddress(address) if address else None)
        self.proxies.append(proxy)
        return proxy

    def assertRetryIn(self, seconds, text):
        """`text` asks to try again in at most `seconds` seconds."""
        wait = int(re.search(r'try again in (\d+) seconds', text).group(1))
        self.assertTrue(0 < wait <= seconds, text)

    def lines(self, logger, word):
        return [record.getMessage() for record in self.log.records
                if record.name == logger and word in record.getMessage()]

    def summary(self):
        """Write the throttle's summary now, as at the end of a window;
        return its lines without "Failed logins in the last N s: "."""
        self.log.clear()
        gocept.lms.throttle.logins().report(
            gocept.lms.throttle.Limits.from_settings(
                gocept.lms.settings.get()))
        lines = [record.getMessage() for record in self.log.records]
        for line in lines:
            self.assertRegex(line, r'^Failed logins in the last \d+ s: ')
        return [line.split(': ', 1)[1] for line in lines]

    def get(self, path, login=None, password=None, address=None):
        """GET `path` with basic auth; return the response, read."""
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.lms.server.port, timeout=30,
            source_address=(address, 0) if address else None)
        headers = {}
        if login is not None:
            headers['Authorization'] = 'Basic ' + base64.b64encode(
                ('%s:%s' % (login, password)).encode('utf-8')).decode()
        try:
            connection.request('GET', path, headers=headers)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        return response


class ClientPasswords(LoginTestCase):

    def test_a_burst_of_wrong_passwords_is_refused_with_a_fault(self):
        api = self.api()
        # login-failures: 10 by default.
        for i in range(10):
            self.assertUnauthorized(api.checkConnection, 'fred', 'guess%d' % i)
        check = unittest.mock.Mock(wraps=gocept.lms.secrets.check_password)
        with unittest.mock.patch('gocept.lms.secrets.check_password', check):
            fault = self.assertFault(
                gocept.lms.api.TOO_MANY_FAILURES, api.checkConnection,
                'fred', 'guess10')
            # Even the right password, until the penalty is over.
            self.assertFault(
                gocept.lms.api.TOO_MANY_FAILURES, api.registerURLs,
                'fred', self.password, ['http://example.com/'])
        # Refused without a look at the password.
        self.assertEqual(0, check.call_count)
        self.assertTrue(fault.startswith(
            "Too many failed logins for client 'fred': try again in "), fault)
        # login-window / login-failures: 300 / 10 seconds.
        self.assertRetryIn(30, fault)

    def test_one_log_line_then_a_summary(self):
        api = self.api()
        for i in range(12):
            with self.assertRaises(Exception):
                api.checkConnection('fred', 'guess%d' % i)
        [line] = self.lines('gocept.lms.api', 'wrong credentials')
        self.assertIn("checkConnection: wrong credentials for client 'fred' "
                      "from 127.0.0.1", line)
        self.assertNotIn('guess', ' '.join(
            record.getMessage() for record in self.log.records))
        self.assertEqual(
            ["10 for client 'fred', from 127.0.0.1; attempts refused "
             "while throttled: 2",
             "10 from 127.0.0.1, for client 'fred'; attempts refused while "
             "throttled: 2"],
            self.summary())

    def test_other_clients_are_served_meanwhile(self):
        wilma = self.lms.register_client('wilma')
        api = self.api()
        for i in range(11):
            with self.assertRaises(Exception):
                api.checkConnection('fred', 'guess%d' % i)
        self.assertFault(gocept.lms.api.TOO_MANY_FAILURES,
                         api.checkConnection, 'fred', self.password)
        self.assertEqual(2, api.checkConnection('wilma', wilma))
        self.assertEqual([], api.registerURLs(
            'wilma', wilma, ['http://example.com/']))

    def test_unknown_client_ids_are_throttled_alike(self):
        # Otherwise the answer would tell which ids exist.
        api = self.api()
        for i in range(10):
            self.assertUnauthorized(api.checkConnection, 'nobody', 'x')
        fault = self.assertFault(gocept.lms.api.TOO_MANY_FAILURES,
                                 api.checkConnection, 'nobody', 'x')
        self.assertIn("for client 'nobody'", fault)


class AdminSecret(LoginTestCase):

    def test_wrong_admin_secrets_are_throttled(self):
        api = self.api()
        for i in range(10):
            fault = self.assertFault(gocept.lms.api.ADMIN_UNAUTHORIZED,
                                     api.listClients, 'guess%d' % i)
            self.assertEqual('Wrong admin secret.', fault)
        fault = self.assertFault(gocept.lms.api.TOO_MANY_FAILURES,
                                 api.listClients, ADMIN_SECRET)
        self.assertTrue(fault.startswith(
            'Too many failed logins for the admin secret: try again in '),
            fault)
        self.assertRetryIn(30, fault)
        # From elsewhere too: it is the secret that is guessed.
        self.assertFault(gocept.lms.api.TOO_MANY_FAILURES,
                         self.api(ELSEWHERE).unregisterClient,
                         ADMIN_SECRET, 'fred')
        # The clients are not concerned.
        self.assertEqual(2, api.checkConnection('fred', self.password))
        self.assertEqual(1, len(self.lines('gocept.lms.api', 'admin secret')))
        self.assertIn('10 for the admin secret, from 127.0.0.1; attempts '
                      'refused while throttled: 2', self.summary())


class Addresses(LoginTestCase):

    config = {'login-failures-per-address': '5'}

    def test_an_address_that_tries_many_ids_is_refused(self):
        attacker = self.api(ELSEWHERE)
        for client_id in ['anna', 'bert', 'carl', 'dora', 'emil']:
            self.assertUnauthorized(attacker.checkConnection, client_id, 'x')
        fault = self.assertFault(gocept.lms.api.TOO_MANY_FAILURES,
                                 attacker.checkConnection, 'fred',
                                 self.password)
        self.assertIn('Too many failed logins from 127.0.0.2: try again',
                      fault)
        # 300 / 5 seconds
        self.assertRetryIn(60, fault)
        self.assertEqual(2, self.api().checkConnection('fred', self.password))

    def test_an_address_that_tries_many_zmi_logins_gets_429(self):
        for login in ['admin', 'root', 'zope', 'manager', 'lms']:
            self.assertEqual(401, self.get('/lms/@@overview.html', login,
                                           'secret', ELSEWHERE).status)
        response = self.get('/lms/@@overview.html', 'mgr', 'mgrpw',
                            ELSEWHERE)
        self.assertEqual(429, response.status)
        self.assertTrue(0 < int(response.getheader('Retry-After')) <= 60)
        self.assertEqual(200, self.get('/lms/@@overview.html', 'mgr',
                                       'mgrpw').status)

    def test_requests_without_a_login_are_not_counted(self):
        for i in range(20):
            response = self.get('/lms/@@overview.html', address=ELSEWHERE)
            self.assertEqual(401, response.status)
        self.assertEqual(200, self.get('/lms/@@overview.html', 'mgr',
                                       'mgrpw', ELSEWHERE).status)
        self.assertEqual([], self.summary())
        # A request is one attempt, however often the publication asks.
        for i in range(5):
            self.assertEqual(401, self.get('/lms/@@overview.html', 'mgr',
                                           'guess', ELSEWHERE).status)
        self.assertEqual(429, self.get('/lms/@@overview.html', 'mgr',
                                       'mgrpw', ELSEWHERE).status)


class ZMILogins(LoginTestCase):

    def test_wrong_zmi_logins_are_throttled_with_429(self):
        overview = '/lms/@@overview.html'
        self.assertEqual(200, self.get(overview, 'mgr', 'mgrpw').status)
        for i in range(10):
            response = self.get(overview, 'mgr', 'guess%d' % i)
            self.assertEqual(401, response.status)
            self.assertIn(
                'basic', response.getheader('WWW-Authenticate').lower())
        response = self.get(overview, 'mgr', 'mgrpw')
        self.assertEqual(429, response.status)
        self.assertIsNone(response.getheader('WWW-Authenticate'))
        # login-window / login-failures: 300 / 10 seconds.
        self.assertTrue(0 < int(response.getheader('Retry-After')) <= 30)
        # From elsewhere too.
        self.assertEqual(
            429, self.get(overview, 'mgr', 'mgrpw', ELSEWHERE).status)

    def test_failed_zmi_logins_are_logged(self):
        for i in range(11):
            self.get('/lms/@@overview.html', 'mgr', 'guess%d' % i)
        [line] = self.lines('gocept.lms.browser.login', 'Failed login')
        self.assertIn("Failed login of ZMI login 'mgr' from 127.0.0.1",
                      line)
        self.assertIn("10 for ZMI login 'mgr', from 127.0.0.1; attempts "
                      "refused while throttled: 1", self.summary())
        self.assertNotIn('guess', ' '.join(
            record.getMessage() for record in self.log.records))



class CountingRegistry:
    """The principal registry, counting the password checks."""

    def __init__(self):
        import zope.principalregistry.principalregistry as registry
        self.registry = registry.principalRegistry
        self.checks = 0

    def authenticate(self, request):
        self.checks += 1
        return self.registry.authenticate(request)

    def __getattr__(self, name):
        return getattr(self.registry, name)


class VerifiedLogins(LoginTestCase):
    """A verified ZMI login skips bcrypt for login-cache-seconds."""

    def setUp(self):
        super().setUp()
        import zope.authentication.interfaces
        import zope.component
        self.auth = zope.component.getUtility(
            zope.authentication.interfaces.IAuthentication)
        self.registry = CountingRegistry()
        self.clock = [1000.0]
        self.verified = gocept.lms.browser.login.VerifiedLogins(
            clock=lambda: self.clock[0])
        patches = [unittest.mock.patch.object(self.auth, name, value)
                   for name, value in (('registry', self.registry),
                                       ('verified', self.verified))]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)

    def test_the_password_is_checked_once_per_login_and_time(self):
        overview = '/lms/@@overview.html'
        for i in range(5):
            self.assertEqual(200, self.get(overview, 'mgr', 'mgrpw').status)
        self.assertEqual(1, self.registry.checks)
        # a wrong password is checked, and refused, as ever
        self.assertEqual(401, self.get(overview, 'mgr', 'wrong').status)
        self.assertEqual(2, self.registry.checks)
        self.assertEqual(200, self.get(overview, 'mgr', 'mgrpw').status)
        self.assertEqual(2, self.registry.checks)
        # after login-cache-seconds (300) the password is checked again
        self.clock[0] += 301
        self.assertEqual(200, self.get(overview, 'mgr', 'mgrpw').status)
        self.assertEqual(3, self.registry.checks)

    def test_no_password_is_kept(self):
        self.get('/lms/@@overview.html', 'mgr', 'mgrpw')
        self.assertNotIn('mgrpw', repr(self.verified._logins))
        self.assertNotIn(b'mgrpw', b''.join(
            entry[0] for entry in self.verified._logins.values()))

    def test_at_most_size_logins_are_kept(self):
        verified = gocept.lms.browser.login.VerifiedLogins(size=2)
        for login in 'abc':
            verified.remember(login, 'pw', login, 60)
        self.assertEqual(['b', 'c'], list(verified._logins))
        self.assertIsNone(verified.principal_id('a', 'pw'))
        self.assertEqual('c', verified.principal_id('c', 'pw'))
        verified.remember('d', 'pw', 'd', 0)  # 0 seconds: not kept
        self.assertIsNone(verified.principal_id('d', 'pw'))
