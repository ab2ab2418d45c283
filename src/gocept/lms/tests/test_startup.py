"""The first start on a new database: bin/web creates the LMS site, the
workers wait for it and write nothing, and two processes that create it at
the same moment both carry on. Against a real ZEO server."""

import os
import subprocess
import tempfile
import threading
import unittest
import unittest.mock

import transaction
import ZEO
import zope.component
import zope.lifecycleevent.interfaces

import gocept.lms.app
import gocept.lms.conflicts
import gocept.lms.db
import gocept.lms.tests
from gocept.lms.interfaces import ILMS
from gocept.lms.tests import processes


def lms_sites(db):
    """Names of the LMS sites, or None when there is no root folder."""
    connection = db.open(transaction.TransactionManager())
    try:
        root = connection.root()
        if 'Application' not in root:
            return None
        return sorted(name for name, obj in root['Application'].items()
                      if ILMS.providedBy(obj))
    finally:
        connection.close()


class StartupTestCase(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)

    def zeo_db(self):
        db = ZEO.DB(self.zeo.address)
        self.addCleanup(db.close)
        return db

    def conf(self, name, **settings):
        directory = os.path.join(self.tmp, name)
        os.makedirs(directory)
        config = {'secret-key-file': os.path.join(self.tmp, 'secret.key'),
                  'check-stats-file': os.path.join(directory, 'stats.json'),
                  'mail-queue': os.path.join(directory, 'mailqueue')}
        config.update(settings)
        return processes.write_zope_conf(directory, self.zeo, config)

    def start(self, name, script, *args, **settings):
        """Start bin/<script> with a zope.conf of its own."""
        conf = self.conf(name, **settings)
        log = open(os.path.join(self.tmp, name + '.log'), 'w+')
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [os.path.join(processes.BIN, script), '-C', conf] + list(args),
            cwd=processes.CHECKOUT, stdout=log, stderr=subprocess.STDOUT,
            text=True)
        self.addCleanup(self.stop, process)
        process.log = log
        return process

    def stop(self, process):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def output(self, process):
        process.log.flush()
        process.log.seek(0)
        return process.log.read()


class FirstStart(StartupTestCase):

    def test_web_servers_and_workers_started_at_once(self):
        # Nothing but the ZEO server runs yet; everything starts at the
        # same moment, bin/web twice (both may create the site).
        ports = [processes.free_port(), processes.free_port()]
        webs = [self.start('web%d' % i, 'web',
                           **{'http-address': '127.0.0.1:%d' % port})
                for i, port in enumerate(ports)]
        workers = [self.start('notifier', 'notifier', '--once'),
                   self.start('checker', 'checker', '--once')]
        for port in ports:
            processes.wait_for_port('127.0.0.1', port, timeout=120)
        for worker in workers:
            worker.wait(120)
        logs = '\n'.join(self.output(p) for p in webs + workers)
        self.assertEqual([0, 0], [w.returncode for w in workers], logs)
        self.assertEqual([None, None], [w.poll() for w in webs], logs)
        self.assertNotIn('Traceback', logs)
        self.assertEqual(['lms'], lms_sites(self.zeo_db()))

    def test_workers_give_up_without_a_site_and_write_nothing(self):
        workers = [self.start('notifier', 'notifier', '--once', '--wait=1'),
                   self.start('sync', 'sync', '--wait=1')]
        for worker in workers:
            worker.wait(120)
        for name, worker in zip(['notifier', 'sync'], workers):
            output = self.output(worker)
            self.assertEqual(2, worker.returncode, output)
            lines = [line for line in output.splitlines()
                     if line.startswith(name + ':')]
            self.assertEqual(1, len(lines), output)
            self.assertIn("there is no LMS site 'lms' in the database "
                          "after 1 s", lines[0])
            self.assertIn('waiting for bin/web', output)
        # ZODB's own root object, and nothing of the LMS.
        self.assertIsNone(lms_sites(self.zeo_db()))


class ConcurrentCreation(StartupTestCase):
    """Two processes create the site at the same moment; the second to
    commit conflicts, starts over and finds the first one's site."""

    def test_the_second_creator_carries_on_with_the_first_ones_site(self):
        first, second = self.zeo_db(), self.zeo_db()
        interrupted = []

        # The moment `second` has added its site, but not yet committed
        # it, `first` prepares the database from start to end (in a thread
        # of its own, as in a process of its own).
        @zope.component.adapter(
            ILMS, zope.lifecycleevent.interfaces.IObjectAddedEvent)
        def meanwhile(site, event):
            if interrupted:
                return
            interrupted.append(site)
            thread = threading.Thread(
                target=gocept.lms.app.bootstrap_database, args=(first,))
            thread.start()
            thread.join(60)

        gsm = zope.component.getGlobalSiteManager()
        gsm.registerHandler(meanwhile)
        self.addCleanup(gsm.unregisterHandler, meanwhile)
        before = gocept.lms.conflicts.counts('web')
        gocept.lms.app.bootstrap_database(second)
        after = gocept.lms.conflicts.counts('web')

        self.assertEqual(1, len(interrupted))
        self.assertEqual(1, after['conflicts'] - before['conflicts'])
        self.assertEqual(1, after['retries'] - before['retries'])
        self.assertEqual(['lms'], lms_sites(first))
        self.assertEqual(['lms'], lms_sites(second))
        connection = second.open(transaction.TransactionManager())
        self.addCleanup(connection.close)
        site = gocept.lms.db.root_folder(connection)['lms']
        self.assertIsNot(interrupted[0], site)
        self.assertIsNone(gocept.lms.app.site_missing(second, 'lms'))

    def test_a_conflict_that_does_not_go_away_is_raised(self):
        from ZODB.POSException import ConflictError

        @zope.component.adapter(
            ILMS, zope.lifecycleevent.interfaces.IObjectAddedEvent)
        def always(site, event):
            raise ConflictError()

        with self.assertRaises(ConflictError):
            self.bootstrap_with(always)
        self.assertEqual({'conflicts': 3, 'retries': 2}, self.counted())
        self.assertEqual("there is no LMS site 'lms' in the database",
                         gocept.lms.app.site_missing(self.db, 'lms'))

    def bootstrap_with(self, handler):
        """bootstrap_database in three attempts on a new database
        (`self.db`), with `handler` registered."""
        gsm = zope.component.getGlobalSiteManager()
        gsm.registerHandler(handler)
        self.addCleanup(gsm.unregisterHandler, handler)
        self.db = self.zeo_db()
        self.before = gocept.lms.conflicts.counts('web')
        with unittest.mock.patch.object(gocept.lms.conflicts, 'pause'):
            gocept.lms.app.bootstrap_database(self.db, attempts=3)

    def counted(self):
        """The conflicts and retries counted since bootstrap_with."""
        after = gocept.lms.conflicts.counts('web')
        return {name: after[name] - self.before[name] for name in after}

    def test_an_oid_handed_out_twice_is_tried_again(self):
        # As after a restart of the ZEO server (db.txt): the first new
        # object of the site gets an OID another object has.
        failures = [ValueError(gocept.lms.db.REISSUED_OID)]

        @zope.component.adapter(
            ILMS, zope.lifecycleevent.interfaces.IObjectAddedEvent)
        def once(site, event):
            if failures:
                raise failures.pop()

        self.bootstrap_with(once)
        self.assertEqual([], failures)
        self.assertEqual({'conflicts': 1, 'retries': 1}, self.counted())
        self.assertIsNone(gocept.lms.app.site_missing(self.db, 'lms'))


class WaitForSite(unittest.TestCase):
    """scripts.wait_for_site with a clock of its own."""

    def test_polls_reports_every_few_seconds_and_gives_up(self):
        import gocept.lms.scripts
        now = [0.0]
        answers = ['no site'] * 30 + [None]
        asked = []

        def missing(db, name):
            asked.append(now[0])
            return answers.pop(0)
        with unittest.mock.patch.object(
                gocept.lms.app, 'site_missing', missing), \
                self.assertLogs('gocept.lms', 'INFO') as logged:
            ready = gocept.lms.scripts.wait_for_site(
                None, 'checker', timeout=60, poll=0.5, report=5,
                clock=lambda: now[0],
                sleep=lambda s: now.__setitem__(0, now[0] + s))
        self.assertTrue(ready)
        self.assertEqual(15.0, asked[-1])
        self.assertEqual(
            ['checker: waiting for bin/web: no site (%d s so far)' % s
             for s in (0, 5, 10)],
            [r.getMessage() for r in logged.records])

        now[0] = 0.0
        answers[:] = ['no site'] * 100
        with unittest.mock.patch.object(
                gocept.lms.app, 'site_missing', missing), \
                unittest.mock.patch('sys.stderr') as stderr, \
                self.assertLogs('gocept.lms', 'INFO'):
            ready = gocept.lms.scripts.wait_for_site(
                None, 'checker', timeout=2, poll=0.5, report=5,
                clock=lambda: now[0],
                sleep=lambda s: now.__setitem__(0, now[0] + s))
        self.assertFalse(ready)
        message = ''.join(call.args[0] for call in stderr.write.mock_calls)
        self.assertEqual(
            'checker: no site after 2 s; bin/web creates the site and '
            'brings the schema up to date when it starts\n', message)
