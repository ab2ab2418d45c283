"""bin/sync end to end: a real ZEO server, real XML-RPC callback servers on
127.0.0.1, and the script as the cron job runs it."""

import os
import tempfile
import unittest

import ZEO
import zope.component.hooks
import zope.event
import zope.processlifetime

import gocept.lms.client
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, IURLProvider
from gocept.lms.interfaces import ISynchronization
from gocept.lms.tests import processes
from gocept.lms.tests.processes import CallbackServer


class SyncScriptTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)
        self.conf = processes.write_zope_conf(
            self.tmp, self.zeo, {
                'secret-key-file': self.layer.config['secret-key-file'],
                'callback-timeout': '5',
                'callback-batch-size': '2'})
        self.db = ZEO.DB(self.zeo.address)
        self.addCleanup(self.db.close)
        # What the LMS does on first start: root folder and LMS site.
        zope.event.notify(zope.processlifetime.DatabaseOpened(self.db))
        self.servers = []

    def tearDown(self):
        for server in self.servers:
            server.stop()
        zope.component.hooks.setSite(None)

    def open_site(self):
        return processes.open_site(self.db, self.addCleanup)

    def add_client(self, id, links):
        server = CallbackServer(id, 'pw-' + id, links)
        self.servers.append(server)
        tm, site = self.open_site()
        client = gocept.lms.client.Client(id)
        client.set_password('pw-' + id, gocept.lms.tests.key_file())
        client.callback = server.url
        zope.component.getUtility(IClientProvider).add(client)
        tm.commit()
        return server

    def sync(self, *args):
        return processes.run_script('sync', '-C', self.conf, *args)

    def test_sync_against_real_callbacks(self):
        fred = self.add_client('fred', [
            'http://a.example/', 'http://b.example/', 'http://a.example/',
            'junk', 'http://c.example/'])
        barney = self.add_client('barney', ['http://b.example/'])
        result = self.sync()
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('fred: fetched 5, added 3, removed 0, notified 3',
                      result.stderr)
        self.assertIn('2 clients synced, 0 failed', result.stderr)
        self.assertEqual(
            ['getAllLinks', 'updateManyStates 2', 'updateManyStates 1'],
            fred.calls)
        self.assertEqual(
            [['http://a.example/', 'unknown', 'unknown'],
             ['http://b.example/', 'unknown', 'unknown'],
             ['http://c.example/', 'unknown', 'unknown']],
            sorted(fred.received))
        self.assertEqual([['http://b.example/', 'unknown', 'unknown']],
                         barney.received)

        tm, site = self.open_site()
        urls = zope.component.getUtility(IURLProvider)
        self.assertEqual(3, len(urls))
        self.assertEqual({'fred', 'barney'},
                         urls.get_url('http://b.example/').clients)
        clients = zope.component.getUtility(IClientProvider)
        self.assertIsNotNone(ISynchronization(clients['fred']).last)

        # Nothing is due an hour later; --client forces one.
        fred.calls.clear()
        result = self.sync('-q')
        self.assertEqual((0, ''), (result.returncode, result.stderr))
        self.assertEqual([], fred.calls)
        fred.links = ['http://c.example/']
        result = self.sync('--client', 'fred')
        self.assertEqual(0, result.returncode, result.stderr)
        tm.abort()
        self.assertEqual(['http://c.example/'],
                         [u.url for u in clients['fred'].urls])
        self.assertIsNone(urls.get_url('http://a.example/'))
        self.assertEqual({'barney'},
                         urls.get_url('http://b.example/').clients)

    def test_failing_client_gives_exit_status_1_and_is_recorded(self):
        fred = self.add_client('fred', ['http://a.example/'])
        barney = self.add_client('barney', ['http://b.example/'])
        fred.password = 'the client changed its password'
        result = self.sync()
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertIn('sync: fred failed: Fault', result.stderr)
        self.assertIn('wrong credentials', result.stderr)
        self.assertEqual(['getAllLinks', 'updateManyStates 1'],
                         barney.calls)
        tm, site = self.open_site()
        clients = zope.component.getUtility(IClientProvider)
        state = ISynchronization(clients['fred'])
        self.assertEqual((None, 1), (state.last, state.failures))
        self.assertEqual([], list(clients['fred'].urls))

    def test_unreachable_client_fails(self):
        fred = self.add_client('fred', ['http://a.example/'])
        fred.stop()  # nobody listens there any more
        result = self.sync('--force')
        self.assertEqual(1, result.returncode)
        self.assertIn('ConnectionRefusedError', result.stderr)

    def test_a_client_that_does_not_answer_times_out(self):
        hanging = processes.SilentServer()
        self.addCleanup(hanging.stop)
        self.add_client('barney', ['http://b.example/'])
        tm, site = self.open_site()
        fred = gocept.lms.client.Client('fred')
        fred.set_password('pw-fred', gocept.lms.tests.key_file())
        fred.callback = hanging.url
        zope.component.getUtility(IClientProvider).add(fred)
        tm.commit()
        directory = tempfile.mkdtemp(dir=self.tmp)
        conf = processes.write_zope_conf(directory, self.zeo, {
            'secret-key-file': self.layer.config['secret-key-file'],
            'callback-timeout': '0.5'})
        # Without the timeout the syncer would wait for fred for ever
        # (and run_script would give up after two minutes).
        result = processes.run_script('sync', '-C', conf, '--force')
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertIn('fred: sync failed', result.stderr)
        self.assertIn('TimeoutError', result.stderr)
        # The syncer did reach fred's callback: the failure is its silence.
        self.assertEqual(1, hanging.wait_for_connections(1))
        # fred's failure is recorded; barney was synced all the same.
        tm, site = self.open_site()
        clients = zope.component.getUtility(IClientProvider)
        self.assertIn('TimeoutError',
                      ISynchronization(clients['fred']).last_error)
        self.assertEqual(0, ISynchronization(clients['barney']).failures)
        self.assertIsNotNone(ISynchronization(clients['barney']).last)

    def test_unknown_client_and_bad_config(self):
        result = self.sync('--client', 'nobody')
        self.assertEqual(1, result.returncode)
        self.assertIn('nobody failed: no such client', result.stderr)
        result = processes.run_script(
            'sync', '-C', os.path.join(self.tmp, 'missing.conf'))
        self.assertEqual(2, result.returncode)
        self.assertIn('cannot open the database', result.stderr)
