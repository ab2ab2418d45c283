"""Malformed input to the XML-RPC API, over a real socket.

Each malformed call gets a Fault that names what was wrong, one line in
the log and no traceback; nothing is stored, and the server answers the
next call as usual.
"""

import logging
import xmlrpc.client

import gocept.lms.api
from gocept.lms.api import INVALID_PARAMS, METHOD_NOT_FOUND
from gocept.lms.tests.servers import ADMIN_SECRET
from gocept.lms.tests.test_api import APITestCase


def string(text):
    return '<value><string>%s</string></value>' % text


def nested(depth, inner=string('x')):
    """An array `depth` arrays deep, written out by hand: xmlrpc.client
    itself would recurse that deep to write it."""
    return ('<value><array><data>' * depth + inner
            + '</data></array></value>' * depth)


def call(method, *values):
    """A methodCall document of already marshalled <value>s."""
    return ('<?xml version="1.0"?><methodCall><methodName>%s</methodName>'
            '<params>%s</params></methodCall>' % (method, ''.join(
                '<param>%s</param>' % value for value in values))
            ).encode('utf-8')


class LogLines:
    """The log records of the LMS and of the publisher's error
    reporting while the block runs."""

    def __enter__(self):
        self.records = []
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.records.append
        self.loggers = [logging.getLogger(name) for name in (
            'gocept.lms', 'SiteError', 'zope.app.publication')]
        self.levels = [log.level for log in self.loggers]
        for log in self.loggers:
            log.addHandler(self.handler)
            log.setLevel(logging.INFO)
        return self.records

    def __exit__(self, *exc):
        for log, level in zip(self.loggers, self.levels):
            log.removeHandler(self.handler)
            log.setLevel(level)


class InputTestCase(APITestCase):

    def assertRefused(self, code, body, path='/lms/', expected=None):
        """`body` answers the Fault `code` (whose text contains
        `expected`) with status 200 and one log line without a
        traceback; the next call is served. Returns the Fault text."""
        with LogLines() as records:
            status, result, data = self.post(body, path=path)
        self.assertEqual(200, status, data[:500])
        self.assertIsInstance(result, xmlrpc.client.Fault, data[:500])
        self.assertEqual(code, result.faultCode, result.faultString)
        if expected is not None:
            self.assertIn(expected, result.faultString)
        self.assertEqual(1, len(records), [r.getMessage() for r in records])
        self.assertIsNone(records[0].exc_info)
        self.assertIn(result.faultString, records[0].getMessage())
        self.assertStillServing()
        return result.faultString

    def assertNothingChanged(self):
        self.assertEqual(['fred'], list(self.client().__parent__.keys()))
        self.assertTrue(self.client().check_password(self.password))
        self.assertEqual([], self.stored_urls())
        self.assertEqual([], self.lms.smtp.messages)


class NestedArguments(InputTestCase):
    """Arrays nested thousands deep are refused while they are parsed,
    before anything (the log, str(), repr()) walks them recursively."""

    def calls(self, value):
        password = string(self.password)
        secret = string(ADMIN_SECRET)
        return [
            call('checkConnection', value, password),
            call('checkConnection', string('fred'), value),
            call('registerClient', secret, value,
                 string('http://127.0.0.1:9/'), string('Wilma'),
                 string('wilma@example.com')),
            call('unregisterClient', secret, value),
        ]

    def test_1000_and_100000_deep_as_id_password_or_admin_id(self):
        for depth in (1000, 100000):
            for body in self.calls(nested(depth)):
                fault = self.assertRefused(INVALID_PARAMS, body)
                self.assertEqual(
                    'Arguments nested more than 32 arrays or structs deep '
                    'are not accepted; no method of the LMS takes more '
                    'than an array of strings.', fault)
        self.assertNothingChanged()

    def test_structs_count_as_deep_as_arrays(self):
        value = string('x')
        for i in range(33):
            value = ('<value><struct><member><name>a</name>%s</member>'
                     '</struct></value>' % value)
        self.assertRefused(INVALID_PARAMS, call('listClients', value),
                           expected='nested more than 32')

    def test_up_to_32_deep_is_parsed_and_answered_by_the_method(self):
        # 32 deep is within the limit: the value reaches the type check
        # (a password is a string) ...
        fault = self.assertRefused(
            INVALID_PARAMS, call('checkConnection', string('fred'),
                                 nested(32)))
        self.assertEqual(
            'password must be a string, not an array: '
            'checkConnection(client_id, password).', fault)
        # ... and as an entry of a URL list it is skipped like any other
        # entry that is no URL string.
        status, result, data = self.post(call(
            'registerURLs', string('fred'), string(self.password),
            nested(1, nested(31) + string('http://example.com/a'))))
        self.assertEqual((200, []), (status, result), data)
        self.assertEqual(['http://example.com/a'], self.stored_urls())
        self.assertRefused(INVALID_PARAMS, call(
            'registerURLs', string('fred'), string(self.password),
            nested(1, nested(32))), expected='nested more than 32')


class ArgumentTypes(InputTestCase):
    """Every method checks the types of all its arguments before it does
    anything else, the credentials included."""

    def valid(self):
        return {
            'secret': ADMIN_SECRET,
            'client_id': 'fred',
            'password': self.password,
            'callback_url': 'http://127.0.0.1:9/w/',
            'contact_name': 'Wilma',
            'contact_email': 'wilma@example.com',
            'urls': ['http://example.com/a'],
            'enabled': False,
        }

    def test_each_argument_of_each_method(self):
        wrong = {'a struct': {'a': 'b'}, 'nil': None, 'an int': 2,
                 'a double': 1.5}
        for method, names in sorted(gocept.lms.api.SIGNATURES.items()):
            for name in names:
                expected = gocept.lms.api.ARGUMENT_TYPES[name][1]
                for type_name, value in sorted(wrong.items()):
                    args = dict(self.valid(), **{name: value})
                    body = xmlrpc.client.dumps(
                        tuple(args[n] for n in names), method,
                        allow_none=True).encode('utf-8')
                    fault = self.assertRefused(INVALID_PARAMS, body)
                    self.assertEqual('%s must be %s, not %s: %s.' % (
                        name, expected, type_name,
                        gocept.lms.api.signature(method)), fault)
        self.assertNothingChanged()
        self.assertTrue(self.api.getClientNotifications(
            'fred', self.password))
        # Old clients built on xmlrpclib send 0 and 1 for booleans.
        self.assertTrue(self.api.setClientNotifications(
            'fred', self.password, 0))
        self.assertFalse(self.api.getClientNotifications(
            'fred', self.password))
        self.assertTrue(self.api.setClientNotifications(
            'fred', self.password, 1))
        self.assertTrue(self.api.getClientNotifications(
            'fred', self.password))

    def test_wrong_types_are_faults_before_the_credentials_are_checked(self):
        fault = self.assertFault(INVALID_PARAMS, self.api.checkConnection,
                                 42, 'wrong password')
        self.assertEqual('client_id must be a string, not an int: '
                         'checkConnection(client_id, password).', fault)
        fault = self.assertFault(INVALID_PARAMS, self.api.listClients,
                                 ['secret'])
        self.assertEqual('secret must be a string, not an array: '
                         'listClients(secret).', fault)
        self.assertStillServing()


class ContactData(InputTestCase):
    """The contact name ends up in the To: header of the mails."""

    def test_line_breaks_and_control_characters_in_the_name(self):
        # An XML parser reads a CR (and CR LF) as LF; a CR arrives as
        # itself only written as a character reference.
        for name in ['Wilma&#13;&#10;Bcc: eve@example.com', 'Wilma&#13;',
                     'Wilma\nBcc: eve@example.com', 'Wilma\r\n',
                     'Wilma\tFlintstone', 'Wilma\x7f',
                     'Wilma\u2028Flintstone', 'Wilma\x85']:
            body = call('registerClient', string(ADMIN_SECRET),
                        string('wilma'), string('http://127.0.0.1:9/'),
                        string(name), string('wilma@example.com'))
            received = (name.replace('\r\n', '\n').replace('&#13;', '\r')
                        .replace('&#10;', '\n'))
            fault = self.assertRefused(INVALID_PARAMS, body)
            self.assertEqual(
                'contact_name must be one line of at most 200 printable '
                'characters, without line breaks, tabs or other control '
                'characters; got %r.' % received, fault)
        self.assertNothingChanged()
        self.assertTrue(self.api.registerClient(
            ADMIN_SECRET, 'wilma', 'http://127.0.0.1:9/',
            'Wilma Flintstone-Slate, Jr. <"W">', 'wilma@example.com'))
        self.assertEqual('"Wilma Flintstone-Slate, Jr. <\\"W\\">" '
                         '<wilma@example.com>', self.lms.smtp.pop()[2]['To'])


class Addresses(InputTestCase):
    """A path leads to a site's method and nowhere else."""

    def checkConnection(self, method='checkConnection'):
        return xmlrpc.client.dumps(('fred', self.password),
                                   method).encode('utf-8')

    def test_method_names_that_are_no_methods(self):
        for method, name, why in [
                ('registerURLs.__globals__', '__globals__',
                 'not found below a method'),
                ('registerURLs.__self__', '__self__',
                 'not found below a method'),
                ('checkConnection.checkConnection', 'checkConnection',
                 'not found below a method'),
                ('..', '', 'not found'),
                ('.', '', 'not found'),
                ('checkConnection.', '', 'not found'),
                ('++attribute++__class__', '++attribute++__class__',
                 'not found'),
                ('++skin++Rotterdam.checkConnection', '++skin++Rotterdam',
                 'not found'),
                ('++etc++site', '++etc++site', 'not found'),
                ('@@checkConnection', '@@checkConnection', 'not found'),
                # Views for any request, and the namespaces' adapters,
                # by their plain names
                ('absolute_url', 'absolute_url', 'not found'),
                ('PUT', 'PUT', 'not found'),
                ('etc', 'etc', 'not found'),
                ('lms.absolute_url', 'lms', 'not found'),
                ]:
            fault = self.assertRefused(METHOD_NOT_FOUND,
                                       self.checkConnection(method))
            self.assertTrue(fault.startswith(
                'Unknown method or wrong address (%r %s). An LMS serves '
                'these methods at the address of its site: checkConnection,'
                % (name, why)), (method, fault))
        self.assertNothingChanged()

    def test_the_site_itself_is_no_method(self):
        fault = self.assertRefused(METHOD_NOT_FOUND,
                                   self.checkConnection('lms'), path='/')
        self.assertIn("('lms' is not a method)", fault)
        self.assertRefused(METHOD_NOT_FOUND,
                           self.checkConnection('lms.++etc++site'), path='/',
                           expected="('++etc++site' not found)")
        # The method at the site's address, with its dotted path from
        # the root, works.
        self.assertEqual((200, 2), self.post(
            self.checkConnection('lms.checkConnection'), path='/')[:2])

    def test_odd_urls(self):
        for path, expected in [
                ('/lms/++etc++site/', "('++etc++site' not found)"),
                ('/++skin++Rotterdam/lms/', "('++skin++Rotterdam' not found)"),
                ('/lms/checkConnection',
                 "('checkConnection' not found below a method)"),
                ('/lms/checkConnection/', "not found below a method"),
                ]:
            self.assertRefused(METHOD_NOT_FOUND, self.checkConnection(),
                               path=path, expected=expected)
