"""The XML-RPC API over a real socket: bad input, limits, atomicity.

api.txt shows the API as a client author uses it; these tests throw at
the running server what careless or hostile callers send, and check that
each gets an answer to act on, that nothing is half-stored and that the
server serves the next request as usual.
"""

import http.client
import logging
import unittest
import xmlrpc.client

import transaction
import zope.component
import zope.component.hooks

import gocept.lms.api
import gocept.lms.interfaces
import gocept.lms.tests
from gocept.lms.tests.servers import ADMIN_SECRET, LMSFixture
from gocept.lms.tests.servers import XMLRPCAssertions


class APITestCase(XMLRPCAssertions, unittest.TestCase):

    layer = gocept.lms.tests.functional_layer
    config = {}

    def setUp(self):
        self.lms = LMSFixture(**self.config).setUp()
        self.password = self.lms.register_client('fred')
        self.api = self.lms.proxy()

    def tearDown(self):
        self.api('close')()
        self.lms.tearDown()
        gocept.lms.tests.doctest_teardown()

    def post(self, body, content_type='text/xml', path='/lms/', headers=()):
        """Send raw bytes; return (status, Fault or result, raw body)."""
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.lms.server.port, timeout=30)
        try:
            connection.request('POST', path, body, dict(
                {'Content-Type': content_type}, **dict(headers)))
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        try:
            result = xmlrpc.client.loads(data)[0][0]
        except xmlrpc.client.Fault as fault:
            result = fault
        except Exception:
            result = None
        return response.status, result, data

    def assertStillServing(self):
        self.assertEqual(2, self.api.checkConnection('fred', self.password))

    def site(self):
        """The LMS site in a fresh connection to the test database."""
        transaction.begin()
        root = self.layer.getRootFolder()
        site = root['lms']
        zope.component.hooks.setSite(site)
        return site

    def stored_urls(self):
        self.site()
        urls = zope.component.getUtility(gocept.lms.interfaces.IURLProvider)
        return sorted(url.url for url in urls.values())

    def client(self, client_id='fred'):
        self.site()
        return zope.component.getUtility(
            gocept.lms.interfaces.IClientProvider).get(client_id)


class Authentication(APITestCase):

    def test_wrong_password_is_http_401_as_old_clients_expect(self):
        for method in ['checkConnection', 'getClientNotifications',
                       'forceSynchronization', 'getInfoFrameURL']:
            self.assertUnauthorized(getattr(self.api, method), 'fred', 'x')
        self.assertUnauthorized(self.api.registerURLs, 'fred', 'x',
                                ['http://example.com/'])
        self.assertEqual([], self.stored_urls())
        self.assertStillServing()

    def test_unknown_client_and_empty_strings_are_401_too(self):
        # Arguments of the wrong type are Faults (test_api_input.py).
        self.assertUnauthorized(self.api.checkConnection, 'nobody', 'x')
        self.assertUnauthorized(self.api.checkConnection, '', '')

    def test_refusals_are_logged_without_the_password(self):
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        log = logging.getLogger('gocept.lms.api')
        log.addHandler(handler)
        try:
            self.assertUnauthorized(
                self.api.checkConnection, 'fred', 'sesame-12345')
        finally:
            log.removeHandler(handler)
        text = ' '.join(r.getMessage() for r in records)
        self.assertIn("'fred'", text)
        self.assertNotIn('sesame-12345', text)

    def test_admin_methods_need_the_admin_secret(self):
        fault = self.assertFault(
            gocept.lms.api.ADMIN_UNAUTHORIZED, self.api.registerClient,
            'guess', 'eve', 'http://127.0.0.1:9/', 'Eve', 'eve@example.com')
        self.assertIn('admin secret', fault)
        self.assertFault(gocept.lms.api.ADMIN_UNAUTHORIZED,
                         self.api.listClients, ADMIN_SECRET + ' ')
        self.assertFault(gocept.lms.api.ADMIN_UNAUTHORIZED,
                         self.api.unregisterClient, '', 'fred')
        self.assertIsNone(self.client('eve'))
        self.assertIsNotNone(self.client('fred'))
        self.assertEqual([], self.lms.smtp.messages)

    def test_no_plaintext_password_in_the_database(self):
        client = self.client()
        state = repr(client.__getstate__())
        self.assertNotIn(self.password, state)
        self.assertTrue(client.check_password(self.password))


class AdminSecretNotConfigured(APITestCase):

    def test_admin_methods_are_disabled(self):
        self.layer.config['admin-secret-file'] = ''
        fault = self.assertFault(gocept.lms.api.ADMIN_UNAUTHORIZED,
                                 self.api.listClients, ADMIN_SECRET)
        self.assertIn('admin-secret-file', fault)


class Registration(APITestCase):

    def register(self, client_id='wilma', callback='http://127.0.0.1:9/w/',
                 name='Wilma', email='wilma@example.com'):
        return self.api.registerClient(
            ADMIN_SECRET, client_id, callback, name, email)

    def test_duplicate_id_is_a_clear_fault_and_changes_nothing(self):
        fault = self.assertFault(gocept.lms.api.CLIENT_EXISTS, self.register,
                                 'fred')
        self.assertIn("'fred' exists already", fault)
        self.assertTrue(self.client().check_password(self.password))
        self.assertEqual([], self.lms.smtp.messages)

    def test_bad_callback_urls(self):
        for callback in ['ftp://127.0.0.1/', 'javascript:alert(1)',
                         'http://', '127.0.0.1:8080', 'http://exa mple/',
                         'http://127.0.0.1:port/', 'http://bücher.example/',
                         '', 42, 'http://x/' + 'a' * 3000]:
            fault = self.assertFault(gocept.lms.api.INVALID_PARAMS,
                                     self.register, 'wilma', callback)
            self.assertIn('callback_url', fault)
        self.assertIsNone(self.client('wilma'))

    def test_bad_contact_emails(self):
        for email in ['wilma', 'wilma@', '@example.com', 'w@localhost',
                      'w @example.com', 'w@example.com\nBcc: x@example.com',
                      'wilma@exämple.com', 'wilma@example.com\n', '', 42]:
            fault = self.assertFault(gocept.lms.api.INVALID_PARAMS,
                                     self.register, 'wilma',
                                     'http://127.0.0.1:9/', 'Wilma', email)
            self.assertIn('contact_email', fault)
        self.assertIsNone(self.client('wilma'))
        self.assertEqual([], self.lms.smtp.messages)

    def test_bad_client_ids(self):
        for client_id in ['', '../x', 'a/b', '@@view', '++etc++site',
                          'x' * 101, 'wil ma', 'wilmä', 'wilma\n', 7]:
            self.assertFault(gocept.lms.api.INVALID_PARAMS,
                             self.register, client_id)
        self.assertEqual(['fred'], list(self.client().__parent__.keys()))

    def test_registration_mail_goes_to_contact_and_copy_list(self):
        self.layer.config['mail-copy-to'] = 'ops@example.com, boss@example.com'
        self.assertTrue(self.register())
        mail_from, recipients, message = self.lms.smtp.pop()
        self.assertEqual(['wilma@example.com', 'ops@example.com',
                          'boss@example.com'], recipients)
        self.assertEqual('Wilma <wilma@example.com>', message['To'])
        self.assertNotIn('ops@example.com', str(message))
        text = message.get_content()
        for expected in ['wilma', 'http://127.0.0.1:9/w/', 'Wilma',
                         'http://127.0.0.1:8080/lms/']:
            self.assertIn(expected, text)
        password = gocept.lms.tests.servers.password_from(message)
        self.assertGreaterEqual(len(password), 40)
        self.assertEqual(2, self.api.checkConnection('wilma', password))


class URLs(APITestCase):

    config = {'max-urls-per-call': '1000'}

    def test_invalid_entries_are_skipped_valid_ones_stored(self):
        answer = self.api.registerURLs('fred', self.password, [
            'http://example.com/a', '', 'not a url', 'http://exämple.com/',
            'http://example.com/a', 42, ['nested'], {'a': 'b'}, True,
            'http:', 'x' * 3000, 'http://example.com/' + 'a' * 2048,
            'mailto:fred@example.com', 'http://example.com/b c'])
        self.assertEqual([], answer)
        self.assertEqual(['http://example.com/a', 'mailto:fred@example.com'],
                         self.stored_urls())

    def test_urls_must_be_an_array(self):
        fault = self.assertFault(gocept.lms.api.INVALID_PARAMS,
                                 self.api.registerURLs, 'fred', self.password,
                                 'http://example.com/')
        self.assertIn('array of URL strings, not a string', fault)
        self.assertEqual([], self.stored_urls())

    def test_too_many_urls_is_a_fault_and_stores_nothing(self):
        urls = ['http://example.com/%d' % i for i in range(1001)]
        fault = self.assertFault(gocept.lms.api.TOO_MANY_URLS,
                                 self.api.registerURLs, 'fred',
                                 self.password, urls)
        self.assertIn('at most 1000', fault)
        self.assertEqual([], self.stored_urls())
        self.assertEqual([], self.api.registerURLs(
            'fred', self.password, urls[:1000]))
        self.assertEqual(1000, len(self.stored_urls()))

    def test_answer_lists_only_known_states(self):
        self.api.registerURLs('fred', self.password,
                              ['http://example.com/a', 'http://example.com/b'])
        site = self.site()
        urls = zope.component.getUtility(gocept.lms.interfaces.IURLProvider)
        import datetime
        urls.get_url('http://example.com/a').update_check(
            'unavailable', datetime.datetime.now(datetime.timezone.utc),
            '404 Not Found')
        transaction.commit()
        self.assertEqual(
            [['http://example.com/a', 'unavailable', '404 Not Found']],
            self.api.registerURLs('fred', self.password, [
                'http://example.com/a', 'http://example.com/b',
                'http://example.com/c']))
        self.assertEqual(
            [['http://example.com/b', 'unknown', 'unknown'],
             ['http://example.com/a', 'unavailable', '404 Not Found']],
            self.api.getURLStates('fred', self.password, [
                'http://example.com/b', 'http://example.com/a',
                'http://example.com/b', 'http://example.com/never', 7]))

    def test_a_failing_call_stores_nothing(self):
        # An error in the middle of the work (here: a broken subscriber)
        # aborts the transaction: no URL of the call is kept.
        calls = []

        @zope.component.adapter(gocept.lms.interfaces.IURLsAddedEvent)
        def explode(event):
            calls.extend(url.url for url in event.urls)
            raise RuntimeError('boom')
        zope.component.provideHandler(explode)
        try:
            with self.assertRaises(xmlrpc.client.ProtocolError) as caught:
                self.api.registerURLs('fred', self.password, [
                    'http://example.com/%d' % i for i in range(5)])
            self.assertEqual(500, caught.exception.errcode)
        finally:
            zope.component.getGlobalSiteManager().unregisterHandler(explode)
        self.assertEqual(5, len(calls))
        self.assertEqual([], self.stored_urls())
        self.assertEqual(0, len(self.client().url_ids))
        self.assertStillServing()

    def test_unregister_urls(self):
        self.lms.register_client('wilma')
        self.api.registerURLs('fred', self.password, [
            'http://example.com/a', 'http://example.com/b'])
        self.assertTrue(self.api.unregisterURLs('fred', self.password, [
            'http://example.com/a', 'http://example.com/unknown', 'junk', 3]))
        self.assertEqual(['http://example.com/b'], self.stored_urls())


class BadRequests(APITestCase):

    config = {'max-request-bytes': str(64 * 1024)}

    def call(self, method, *params):
        return xmlrpc.client.dumps(params, method).encode('utf-8')

    def assertRawFault(self, code, body, status=200, **kw):
        status_, result, data = self.post(body, **kw)
        self.assertEqual(status, status_, data)
        self.assertIsInstance(result, xmlrpc.client.Fault, data)
        self.assertEqual(code, result.faultCode, result.faultString)
        self.assertStillServing()
        return result.faultString

    def test_wrong_argument_counts(self):
        fault = self.assertFault(gocept.lms.api.INVALID_PARAMS,
                                 self.api.registerURLs, 'fred', self.password)
        self.assertEqual(
            'registerURLs takes 3 arguments, 2 given: '
            'registerURLs(client_id, password, urls).', fault)
        self.assertFault(gocept.lms.api.INVALID_PARAMS,
                         self.api.checkConnection, 'fred', self.password, 1)
        self.assertFault(gocept.lms.api.INVALID_PARAMS,
                         self.api.registerClient)
        self.assertStillServing()

    def test_wrong_argument_types(self):
        fault = self.assertFault(gocept.lms.api.INVALID_PARAMS,
                                 self.api.setClientNotifications, 'fred',
                                 self.password, 'yes')
        self.assertIn('enabled must be a boolean, not a string', fault)
        self.assertFault(gocept.lms.api.INVALID_PARAMS,
                         self.api.getURLStates, 'fred', self.password,
                         {'url': 'http://example.com/'})
        self.assertStillServing()

    def test_unknown_method(self):
        fault = self.assertFault(gocept.lms.api.METHOD_NOT_FOUND,
                                 self.api.registerURL, 'fred', 'x', [])
        self.assertIn("'registerURL' not found", fault)
        self.assertIn('registerURLs', fault)
        self.assertFault(gocept.lms.api.METHOD_NOT_FOUND,
                         self.api.system.listMethods)
        self.assertFault(gocept.lms.api.METHOD_NOT_FOUND,
                         self.api.manage_delObjects, 'x')

    def test_wrong_address(self):
        self.assertRawFault(gocept.lms.api.METHOD_NOT_FOUND,
                            self.call('checkConnection', 'fred', 'x'),
                            path='/nolms/')

    def test_malformed_xml(self):
        for body in [b'', b'<methodCall>', b'not xml at all',
                     b'<methodCall><methodName>checkConnection</methodName>'
                     b'<params></methodCall>']:
            fault = self.assertRawFault(gocept.lms.api.PARSE_ERROR, body)
            self.assertIn('not well-formed XML', fault)

    def test_not_xmlrpc(self):
        self.assertRawFault(gocept.lms.api.INVALID_REQUEST,
                            b'<html><body>hello</body></html>')
        self.assertRawFault(
            gocept.lms.api.INVALID_REQUEST,
            b'<methodCall><methodName>checkConnection</methodName><params>'
            b'<param><value><int>twelve</int></value></param>'
            b'</params></methodCall>')

    def test_non_utf8_bytes(self):
        body = self.call('registerURLs', 'fred', self.password,
                         ['http://example.com/X'])
        body = body.replace(b'X', b'\xff\xfe')
        fault = self.assertRawFault(gocept.lms.api.PARSE_ERROR, body)
        self.assertIn('UTF-8', fault)
        self.assertEqual([], self.stored_urls())

    def test_declared_encodings_work(self):
        body = ("<?xml version='1.0' encoding='iso-8859-1'?>"
                '<methodCall><methodName>checkConnection</methodName>'
                '<params><param><value><string>fred</string></value></param>'
                '<param><value><string>%s</string></value></param>'
                '</params></methodCall>' % self.password).encode('latin-1')
        status, result, data = self.post(body)
        self.assertEqual((200, 2), (status, result))

    def test_entity_expansion_bomb(self):
        bomb = ['<?xml version="1.0"?>', '<!DOCTYPE lolz [',
                '<!ENTITY lol "lol">']
        for i in range(1, 10):
            bomb.append('<!ENTITY lol%d "%s">' % (
                i, ('&lol%s;' % (i - 1 if i > 1 else '')) * 10))
        bomb.append(']>')
        bomb.append('<methodCall><methodName>registerURLs</methodName><params>'
                    '<param><value>fred</value></param>'
                    '<param><value>%s</value></param>'
                    '<param><value><array><data><value>&lol9;</value>'
                    '</data></array></value></param></params></methodCall>'
                    % self.password)
        fault = self.assertRawFault(gocept.lms.api.INVALID_REQUEST,
                                    '\n'.join(bomb).encode('ascii'))
        self.assertIn('<!DOCTYPE', fault)
        self.assertEqual([], self.stored_urls())

    def test_external_entity(self):
        body = (b'<?xml version="1.0"?>'
                b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b'<methodCall><methodName>checkConnection</methodName><params>'
                b'<param><value>&e;</value></param></params></methodCall>')
        self.assertRawFault(gocept.lms.api.INVALID_REQUEST, body)

    def test_oversized_body_is_413(self):
        urls = ['http://example.com/%06d' % i for i in range(3000)]
        body = self.call('registerURLs', 'fred', self.password, urls)
        self.assertGreater(len(body), 64 * 1024)
        fault = self.assertRawFault(gocept.lms.api.TOO_LARGE, body,
                                    status=413)
        self.assertIn('larger than the 65536 bytes', fault)
        self.assertEqual([], self.stored_urls())

    def test_deeply_nested_arrays(self):
        # More in test_api_input.py.
        body = ('<methodCall><methodName>registerURLs</methodName><params>'
                '<param><value>fred</value></param>'
                '<param><value>%s</value></param><param>%s%s</param>'
                '</params></methodCall>' % (
                    self.password,
                    '<value><array><data>' * 1000,
                    '</data></array></value>' * 1000)).encode('ascii')
        fault = self.assertRawFault(gocept.lms.api.INVALID_PARAMS, body)
        self.assertIn('nested more than 32 arrays or structs deep', fault)
        self.assertEqual([], self.stored_urls())

    def test_get_request(self):
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.lms.server.port, timeout=30)
        connection.request('GET', '/lms/checkConnection')
        response = connection.getresponse()
        response.read()
        connection.close()
        self.assertGreaterEqual(response.status, 400)
        self.assertStillServing()


class AnonymousWithoutPermissions(APITestCase):

    def test_clients_reach_the_api_without_any_permission(self):
        # etc/site.zcml grants anonymous nothing; the tests' ftesting.zcml
        # grants zope.View. Denying it locally is the production case.
        import zope.securitypolicy.interfaces
        transaction.begin()
        root = self.layer.getRootFolder()
        for obj in (root, root['lms']):
            zope.securitypolicy.interfaces.IPrincipalPermissionManager(
                obj).denyPermissionToPrincipal('zope.View', 'zope.anybody')
        transaction.commit()
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.lms.server.port, timeout=30)
        connection.request('GET', '/lms/')
        response = connection.getresponse()
        response.read()
        connection.close()
        self.assertEqual(401, response.status)
        self.assertStillServing()
        status, fault, body = self.post(
            xmlrpc.client.dumps(('fred', self.password), 'checkConnection'
                                ).encode('utf-8'), path='/')
        self.assertEqual(gocept.lms.api.METHOD_NOT_FOUND, fault.faultCode)
        self.assertTrue(self.api.forceSynchronization('fred', self.password))


class QueuedMail(APITestCase):

    def test_mails_wait_in_the_queue_until_the_processor_sends_them(self):
        import os
        import zope.sendmail.interfaces
        import zope.sendmail.mailer
        import gocept.lms.mail
        from gocept.lms.tests.servers import LOOPBACK, LoopbackSMTP
        queue = os.path.join(self.layer.tmp, 'mailqueue')
        self.layer.config['mail-queue'] = queue
        # Without the tests' direct delivery the configured queue is used.
        zope.component.getGlobalSiteManager().unregisterUtility(
            self.lms.smtp.delivery, zope.sendmail.interfaces.IMailDelivery,
            name='gocept.lms')
        self.api.registerClient(ADMIN_SECRET, 'wilma', 'http://127.0.0.1:9/',
                                'Wilma', 'wilma@example.com')
        self.assertEqual([], self.lms.smtp.messages)
        self.assertEqual(1, len(os.listdir(os.path.join(queue, 'new'))))

        mailer = zope.sendmail.mailer.SMTPMailer(LOOPBACK, self.lms.smtp.port)
        mailer.smtp = LoopbackSMTP
        gocept.lms.mail.queue_processor(mailer=mailer).run(forever=False)
        recipients, message = self.lms.smtp.pop()[1:]
        self.assertEqual(['wilma@example.com'], recipients)
        password = gocept.lms.tests.servers.password_from(message)
        self.assertEqual(2, self.api.checkConnection('wilma', password))
        self.assertEqual([], os.listdir(os.path.join(queue, 'new')))


class Concurrency(APITestCase):

    def test_concurrent_registrations_of_the_same_urls(self):
        # Conflicting writes are retried by the publisher, which parses
        # the request body a second time.
        import threading
        passwords = {'fred': self.password}
        for name in ['wilma', 'barney', 'betty']:
            passwords[name] = self.lms.register_client(name)
        urls = ['http://example.com/%d' % i for i in range(300)]
        errors = []

        def register(client_id):
            try:
                with self.lms.proxy() as api:
                    for start in range(0, 300, 50):
                        api.registerURLs(client_id, passwords[client_id],
                                         urls[start:start + 50])
            except Exception as error:
                errors.append(error)
        threads = [threading.Thread(target=register, args=(name,))
                   for name in passwords]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual([], errors)
        self.assertEqual(sorted(urls), self.stored_urls())
        for name in passwords:
            self.assertEqual(300, len(self.client(name).url_ids))


class LargeCalls(APITestCase):

    def test_10000_urls_in_one_call(self):
        urls = ['http://host%d.example/%d' % (i % 100, i)
                for i in range(10000)]
        self.assertEqual([], self.api.registerURLs('fred', self.password,
                                                   urls))
        self.assertEqual(10000, len(self.client().url_ids))

    def test_default_maximum_is_50000(self):
        urls = ['http://e.example/%d' % i for i in range(50001)]
        fault = self.assertFault(gocept.lms.api.TOO_MANY_URLS,
                                 self.api.registerURLs, 'fred',
                                 self.password, urls)
        self.assertIn('50001; this LMS accepts at most 50000', fault)
        self.assertEqual(0, len(self.client().url_ids))
