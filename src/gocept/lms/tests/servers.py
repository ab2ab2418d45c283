"""Real servers on 127.0.0.1 for tests and benchmarks.

Everything here binds to the loopback address only and never looks up a
host name: the tests must not send a single packet elsewhere.
"""

import asyncio
import email
import email.policy
import re
import smtplib
import threading
import xmlrpc.client

import aiosmtpd.smtp
import webtest.http
import zope.component
import zope.sendmail.delivery
import zope.sendmail.interfaces
import zope.sendmail.mailer

LOOPBACK = '127.0.0.1'


class WSGIServer:
    """A WSGI application served by waitress in a thread (WebTest's
    `StopableWSGIServer`)."""

    def __init__(self, app, threads=4, **adjustments):
        # Not StopableWSGIServer.create(): it looks for a free port on
        # every interface; port 0 on the loopback address needs no search.
        self.server = webtest.http.StopableWSGIServer(
            app, host=LOOPBACK, port=0, threads=threads,
            clear_untrusted_proxy_headers=True, **adjustments)
        self.port = int(self.server.effective_port)
        self.url = 'http://%s:%d/' % (LOOPBACK, self.port)
        self.thread = threading.Thread(
            target=self.server.run, name='waitress', daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve_lms(layer=None, **adjustments):
    """Serve the application on the functional layer's current database.

    Not `layer.make_wsgi_app()`: its middleware syncs the test's own
    connection after each request, which is unsafe from a server thread.
    The test sees the server's commits after `transaction.begin()`.
    """
    import zope.app.wsgi
    if layer is None:
        from gocept.lms.tests import functional_layer as layer
    app = zope.app.wsgi.WSGIPublisherApplication(layer.db)
    return WSGIServer(app, **adjustments).start()


def proxy(url, **kw):
    return xmlrpc.client.ServerProxy(url, **kw)


class SMTPSink:
    """An SMTP server on 127.0.0.1 that keeps what it receives.

    `messages` holds `(mail_from, rcpt_tos, email.message.EmailMessage)`.
    """

    def __init__(self):
        self.messages = []
        self.received = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name='smtp-sink', daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        # An explicit hostname keeps aiosmtpd from asking the resolver
        # for this machine's name.
        self.server = self.loop.run_until_complete(self.loop.create_server(
            lambda: aiosmtpd.smtp.SMTP(self, hostname='localhost',
                                       ident='gocept.lms test sink'),
            host=LOOPBACK, port=0))
        self.port = self.server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(
            envelope.original_content or envelope.content,
            policy=email.policy.default)
        with self.received:
            self.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), message))
            self.received.notify_all()
        return '250 OK'

    def start(self):
        self.thread.start()
        self._ready.wait(10)
        return self

    def stop(self):
        def shutdown():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(shutdown)
        self.thread.join(10)
        self.loop.close()

    def wait(self, count=1, timeout=10):
        """Wait until `count` messages arrived; return all of them."""
        with self.received:
            self.received.wait_for(
                lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def pop(self, timeout=10):
        """Remove and return the oldest message, waiting for it."""
        self.wait(1, timeout)
        with self.received:
            return self.messages.pop(0)


class LoopbackSMTP(smtplib.SMTP):
    """Greets with a fixed name instead of looking up the host's FQDN."""

    def __init__(self, host='', port=0, local_hostname='localhost', **kw):
        super().__init__(host, port, local_hostname=local_hostname, **kw)


def install_smtp_sink():
    """Start an SMTPSink and make the LMS's mails go there (directly at
    commit time)."""
    sink = SMTPSink().start()
    mailer = zope.sendmail.mailer.SMTPMailer(LOOPBACK, sink.port)
    mailer.smtp = LoopbackSMTP
    sink.delivery = zope.sendmail.delivery.DirectMailDelivery(mailer)
    zope.component.provideUtility(
        sink.delivery, zope.sendmail.interfaces.IMailDelivery,
        name='gocept.lms')
    return sink


def uninstall_smtp_sink(sink):
    zope.component.getGlobalSiteManager().unregisterUtility(
        sink.delivery, zope.sendmail.interfaces.IMailDelivery,
        name='gocept.lms')
    sink.stop()


def password_from(message):
    """The client password a registration mail carries."""
    match = re.search(r'Password:\s+(\S+)', message.get_content())
    return match.group(1) if match else None


ADMIN_SECRET = 'test admin secret, not for production'


class XMLRPCAssertions:
    """Assertions on the answers of XML-RPC calls, for TestCases."""

    def assertFault(self, code, call, *args):
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            call(*args)
        self.assertEqual(code, caught.exception.faultCode,
                         caught.exception.faultString)
        return caught.exception.faultString

    def assertUnauthorized(self, call, *args):
        with self.assertRaises(xmlrpc.client.ProtocolError) as caught:
            call(*args)
        self.assertEqual(401, caught.exception.errcode)


class LMSFixture:
    """What a test of the API over sockets needs: the LMS served on
    127.0.0.1, an admin secret, an SMTP sink for the mails.

    Use in the functional layer, after its per-test set-up.
    """

    def __init__(self, layer=None, **config):
        if layer is None:
            from gocept.lms.tests import functional_layer as layer
        self.layer = layer
        self.config = config

    def setUp(self):
        import os
        config = self.layer.config
        self.saved_config = dict(config)
        secret_file = os.path.join(self.layer.tmp, 'admin-secret')
        with open(secret_file, 'w') as f:
            f.write(ADMIN_SECRET + '\n')
        config['admin-secret-file'] = secret_file
        config.setdefault('public-url', 'http://127.0.0.1:8080/lms/')
        config.update(self.config)
        self.smtp = install_smtp_sink()
        self.server = serve_lms(self.layer)
        self.url = self.server.url + 'lms/'
        return self

    def tearDown(self):
        self.server.stop()
        uninstall_smtp_sink(self.smtp)
        self.layer.config.clear()
        self.layer.config.update(self.saved_config)

    def proxy(self, **kw):
        return proxy(self.url, **kw)

    def register_client(self, client_id='fred', callback=None,
                        contact_name='Fred Webmaster',
                        contact_email='fred@example.com'):
        """Register a client; return its password (read from the mail)."""
        callback = callback or 'http://127.0.0.1:9/%s/' % client_id
        with self.proxy() as api:
            api.registerClient(ADMIN_SECRET, client_id, callback,
                               contact_name, contact_email)
        mail_from, recipients, message = self.smtp.pop()
        return password_from(message)
