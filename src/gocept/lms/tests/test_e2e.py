"""The whole LMS end to end: the database (a ZEO server, or PostgreSQL),
web, checker and notifier as real processes, a client with its own XML-RPC callback, a web site whose links
are checked, an SMTP server for the mails. Everything on loopback."""

import os
import signal
import subprocess
import tempfile
import time
import unittest
import xmlrpc.client

import gocept.lms.tests
from gocept.lms.tests import processes
from gocept.lms.tests.processes import CallbackServer, WebServerThread
from gocept.lms.tests.servers import SMTPSink, password_from


ADMIN_SECRET = 'e2e admin secret'


def wait_until(condition, timeout=60, interval=0.2, message='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError('Timed out waiting for %s' % message)


class EndToEndTest(unittest.TestCase):

    # Uses the layer only for its ZCML-free temporary directory handling;
    # the LMS under test runs in its own processes.
    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.procs = {}
        self.database = self.start_database()
        self.smtp = SMTPSink().start()
        self.addCleanup(self.smtp.stop)
        self.web = WebServerThread(['127.0.1.1', '127.0.1.2'])
        self.addCleanup(self.web.stop)
        self.port = processes.free_port()
        self.conf = processes.write_zope_conf(
            self.tmp, self.database, processes.lms_settings(
                self.tmp, self.port, self.smtp.port, ADMIN_SECRET,
                callback_timeout=5, notify_interval=1, notify_poll=0.3,
                notify_retry=1, notify_retry_max=1, notify_max_failures=3,
                notify_failure_hours=0, check_poll=0.3, check_lease=0.05,
                checker_read_timeout=5))
        self.start('web')
        processes.wait_for_port('127.0.0.1', self.port)
        self.start('checker')
        self.start('notifier')
        self.lms = xmlrpc.client.ServerProxy(
            'http://127.0.0.1:%d/lms/' % self.port)

    def tearDown(self):
        for name in list(self.procs):
            self.stop(name)

    def start_database(self):
        zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(zeo.stop)
        return zeo

    def start(self, name):
        log = open(os.path.join(self.tmp, name + '.log'), 'ab')
        self.procs[name] = (subprocess.Popen(
            [os.path.join(processes.BIN, name), '-C', self.conf],
            cwd=processes.CHECKOUT, stdout=log, stderr=subprocess.STDOUT),
            log)

    def stop(self, name, sig=signal.SIGTERM):
        proc, log = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

    def logs(self):
        text = []
        for name in ('web', 'checker', 'notifier'):
            path = os.path.join(self.tmp, name + '.log')
            if os.path.exists(path):
                with open(path, errors='replace') as f:
                    text.append('--- %s\n%s' % (name, f.read()[-3000:]))
        return '\n'.join(text)

    def states(self, client):
        """What the client knows now: url -> state (latest wins)."""
        return {url: state for url, state, reason in client.received}

    def test_the_whole_lms(self):
        try:
            self._test_the_whole_lms()
        except Exception:
            print(self.logs())
            raise

    def _test_the_whole_lms(self):
        web = self.web
        # A client registers; its password comes by mail.
        client = CallbackServer('fred', None, [])
        self.addCleanup(client.stop)
        self.lms.registerClient(ADMIN_SECRET, 'fred', client.url,
                                'Fred', 'fred@example.com')
        mail = self.smtp.pop()[2]
        password = password_from(mail)
        client.password = password
        self.assertEqual(2, self.lms.checkConnection('fred', password))

        # Its links: good, redirected, broken, and slow ones that keep the
        # checker busy while we kill it.
        good = [web.url('/ok'), web.url('/redirect/1'),
                web.url('/ok', host='127.0.1.2')]
        broken = [web.url('/notfound'), web.url('/gone')]
        slow = [web.url('/slow?%s' % (1.5 + i / 10)) for i in range(10)]
        self.assertEqual([], self.lms.registerURLs(
            'fred', password, good + broken + slow))

        # The checker is killed with SIGKILL in the middle of the slow
        # checks; no URL may be lost or stuck: after the restart (and the
        # lease of what it had taken) every URL gets its state.
        wait_until(lambda: any('/slow' in str(entry)
                               for entry in web.server.log),
                   message='slow checks in flight')
        children = processes.child_pids(self.procs['checker'][0].pid)
        self.assertTrue(children)  # its database process, at least
        self.stop('checker', signal.SIGKILL)
        self.assertFalse(set(slow) & set(self.states(client)))
        # No process of the checker's outlives it.
        wait_until(lambda: not any(map(processes.alive, children)),
                   message='the database process gone with the checker')
        self.start('checker')
        everything = good + broken + slow
        wait_until(lambda: set(self.states(client)) >= set(everything),
                   timeout=90, message='states of all URLs at the client')
        states = self.states(client)
        for url in good + slow:
            self.assertEqual('ok', states[url], url)
        for url in broken:
            self.assertEqual('temporary unavailable', states[url], url)

        # The client goes away. New links are checked meanwhile; pushing
        # them fails until notifications are switched off, and the
        # contact gets a mail about that.
        client.stop()
        later = [web.url('/error'), web.url('/ok?later')]
        self.lms.registerURLs('fred', password, later)
        mail = self.smtp.pop(timeout=60)[2]
        self.assertIn('fred', mail['Subject'])
        self.assertIn('switched off', mail['Subject'])
        # The mail leaves while the transaction commits, a moment before
        # the other processes see the change.
        wait_until(lambda: not self.lms.getClientNotifications(
            'fred', password), message='notifications off')
        info = [c for c in self.lms.listClients(ADMIN_SECRET)
                if c['id'] == 'fred'][0]
        self.assertEqual(3, info['failed_notifications'])

        # The client comes back and switches notifications on again: it
        # gets what changed while it was away.
        client = CallbackServer('fred', password, [], port=client.port)
        self.addCleanup(client.stop)
        self.assertTrue(self.lms.setClientNotifications('fred', password,
                                                        True))
        wait_until(lambda: set(self.states(client)) >= set(later),
                   timeout=60, message='the changes made during the outage')
        states = self.states(client)
        self.assertEqual('temporary unavailable', states[web.url('/error')])
        self.assertEqual('ok', states[web.url('/ok?later')])


class EndToEndOnPostgreSQLTest(EndToEndTest):
    """The same on PostgreSQL (RelStorage, etc/zodb-postgresql.conf)."""

    layer = gocept.lms.tests.postgresql_layer

    def start_database(self):
        return processes.database(self.layer.server)

    def test_the_whole_lms(self):
        super().test_the_whole_lms()
        # It was PostgreSQL that held the LMS: the site, its clients and
        # URLs are rows of RelStorage's table (history-free: one per
        # object).
        self.assertGreater(self.database.query(
            'SELECT count(*) FROM object_state')[0][0], 100)
