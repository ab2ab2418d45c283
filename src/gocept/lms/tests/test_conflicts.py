"""Conflicts in bin/web: retried with a pause, counted, never answered to
a client. Over real sockets on 127.0.0.1."""

import http.client
import os
import shutil
import tempfile
import threading
import time
import unittest
import unittest.mock
import urllib.parse
import xmlrpc.client

import ZODB
import ZODB.FileStorage
import zope.app.wsgi
import zope.component
import zope.component.hooks
import zope.interface
import zope.publisher.browser
import zope.publisher.interfaces.browser
import zope.publisher.interfaces.xmlrpc
import zope.security.checker
from ZODB.POSException import ConflictError, ReadConflictError

import gocept.lms.api
import gocept.lms.settings
import gocept.lms.app
import gocept.lms.client
import gocept.lms.conflicts
import gocept.lms.db
import gocept.lms.publication
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, ILMS, IURLProvider
from gocept.lms.tests.servers import LMSFixture, WSGIServer, proxy


def web_counts():
    return gocept.lms.conflicts.counts(gocept.lms.publication.WHERE)


class CountersTest(unittest.TestCase):

    def test_counts_per_place_and_thread_safe(self):
        before = gocept.lms.conflicts.counts('test-a')

        def count():
            for i in range(1000):
                gocept.lms.conflicts.record('test-a', retried=i % 10 != 0)
        threads = [threading.Thread(target=count) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = gocept.lms.conflicts.counts('test-a')
        self.assertEqual(8000, after['conflicts'] - before['conflicts'])
        self.assertEqual(7200, after['retries'] - before['retries'])
        self.assertEqual(after, gocept.lms.conflicts.summary()['test-a'])
        self.assertEqual({'conflicts': 0, 'retries': 0},
                         gocept.lms.conflicts.counts('nowhere'))

    def test_pauses_grow_are_random_and_bounded(self):
        delay = gocept.lms.conflicts.delay
        base = gocept.lms.conflicts.PAUSE_BASE
        top = gocept.lms.conflicts.PAUSE_MAX
        for retry in range(40):
            ceiling = min(top, base * 2 ** retry)
            pauses = {delay(retry) for _ in range(50)}
            self.assertGreater(len(pauses), 1)
            for pause in pauses:
                self.assertGreaterEqual(pause, ceiling / 2)
                self.assertLessEqual(pause, ceiling)


class Flaky:
    """A view that fails with a conflict the first `conflicts` times."""

    conflicts = 0
    calls = 0

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def _maybe_conflict(self):
        cls = type(self)
        cls.calls += 1
        if cls.calls <= cls.conflicts:
            # A ReadConflictError is a ConflictError, retried the same.
            raise (ReadConflictError if cls.calls % 2 else ConflictError)()


class FlakyEcho(Flaky):
    """XML-RPC: answers what it got."""

    def __call__(self, data):
        self._maybe_conflict()
        return data


class FlakyPage(Flaky, zope.publisher.browser.BrowserPage):
    """Browser: answers the form field `x` (or the number of calls)."""

    def __call__(self):
        self._maybe_conflict()
        return self.request.form.get('x', str(type(self).calls))


class PublisherRetries(unittest.TestCase):
    """zope.publisher's own retry, with more attempts and pauses."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.lms = LMSFixture().setUp()
        # The pauses before the retries, without the waiting.
        self.pauses = []
        patcher = unittest.mock.patch.object(
            gocept.lms.conflicts, 'pause', self.pauses.append)
        patcher.start()
        self.addCleanup(patcher.stop)
        gsm = zope.component.getGlobalSiteManager()
        for cls in (FlakyEcho, FlakyPage):
            cls.calls = cls.conflicts = 0
            zope.security.checker.defineChecker(
                cls, zope.security.checker.NamesChecker(
                    ['__call__', 'browserDefault', 'publishTraverse']))
        gsm.registerAdapter(
            FlakyEcho, (ILMS, zope.publisher.interfaces.xmlrpc.IXMLRPCRequest),
            zope.interface.Interface, name='flakyEcho')
        gsm.registerAdapter(
            FlakyPage,
            (ILMS, zope.publisher.interfaces.browser.IBrowserRequest),
            zope.interface.Interface, name='flaky')

    def tearDown(self):
        gsm = zope.component.getGlobalSiteManager()
        gsm.unregisterAdapter(
            FlakyEcho, (ILMS, zope.publisher.interfaces.xmlrpc.IXMLRPCRequest),
            zope.interface.Interface, name='flakyEcho')
        gsm.unregisterAdapter(
            FlakyPage,
            (ILMS, zope.publisher.interfaces.browser.IBrowserRequest),
            zope.interface.Interface, name='flaky')
        for cls in (FlakyEcho, FlakyPage):
            zope.security.checker.undefineChecker(cls)
        self.lms.tearDown()
        gocept.lms.tests.doctest_teardown()

    def request(self, method, path, body=None, headers={}):
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.lms.server.port, timeout=60)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def test_xmlrpc_retries_beyond_the_publishers_default_and_rereads(self):
        # Conflicts up to the last attempt, which succeeds. The body is
        # larger than 64 KiB, so each attempt reads it from a temporary
        # file the attempt before it filled.
        FlakyEcho.conflicts = gocept.lms.conflicts.ATTEMPTS - 1
        data = ['http://example.com/%06d' % i for i in range(3000)]
        body = xmlrpc.client.dumps((data,), 'flakyEcho').encode()
        self.assertGreater(len(body), 65536)
        before = web_counts()
        status, answer = self.request(
            'POST', '/lms/', body, {'Content-Type': 'text/xml'})
        self.assertEqual(200, status)
        self.assertEqual(data, xmlrpc.client.loads(answer)[0][0])
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS, FlakyEcho.calls)
        self.assertEqual(list(range(gocept.lms.conflicts.ATTEMPTS - 1)),
                         self.pauses)
        after = web_counts()
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS - 1,
                         after['conflicts'] - before['conflicts'])
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS - 1,
                         after['retries'] - before['retries'])

    def test_xmlrpc_gives_up_after_the_last_attempt(self):
        FlakyEcho.conflicts = 1000
        before = web_counts()
        status, answer = self.request(
            'POST', '/lms/', xmlrpc.client.dumps(('x',), 'flakyEcho'),
            {'Content-Type': 'text/xml'})
        self.assertEqual(500, status)
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            xmlrpc.client.loads(answer)
        self.assertIn('ConflictError', caught.exception.faultString)
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS, FlakyEcho.calls)
        after = web_counts()
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS,
                         after['conflicts'] - before['conflicts'])
        self.assertEqual(gocept.lms.conflicts.ATTEMPTS - 1,
                         after['retries'] - before['retries'])

    def test_browser_get_and_post_are_retried_too(self):
        FlakyPage.conflicts = 5
        before = web_counts()
        self.assertEqual((200, b'6'), self.request('GET', '/lms/@@flaky'))
        self.assertEqual([0, 1, 2, 3, 4], self.pauses)
        FlakyPage.calls, FlakyPage.conflicts = 0, 5
        form = urllib.parse.urlencode({'x': 'form data, read again'})
        self.assertEqual(
            (200, b'form data, read again'),
            self.request('POST', '/lms/@@flaky', form, {
                'Content-Type': 'application/x-www-form-urlencoded',
                # a form of the LMS itself (browser/security.py)
                'Origin': 'http://127.0.0.1:%d' % self.lms.server.port}))
        after = web_counts()
        self.assertEqual(10, after['conflicts'] - before['conflicts'])
        self.assertEqual(10, after['retries'] - before['retries'])


class ConcurrentRegistrations(unittest.TestCase):
    """Many registerURLs calls at once against a FileStorage, where
    concurrent writes of the same objects really conflict."""

    layer = gocept.lms.tests.functional_layer
    clients = 20

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.db = ZODB.DB(ZODB.FileStorage.FileStorage(
            os.path.join(self.tmp, 'Data.fs')))
        self.addCleanup(self.db.close)
        gocept.lms.app.bootstrap_database(self.db)
        self.passwords = {'client%02d' % i: 'pw%d' % i
                          for i in range(self.clients)}
        with self.db.transaction() as connection:
            site = gocept.lms.db.root_folder(connection)['lms']
            zope.component.hooks.setSite(site)
            try:
                clients = zope.component.getUtility(IClientProvider)
                key_file = gocept.lms.settings.get().secret_key_file
                for client_id, password in self.passwords.items():
                    client = gocept.lms.client.Client(client_id)
                    client.set_password(password, key_file)
                    clients.add(client)
            finally:
                zope.component.hooks.setSite(None)
        self.server = WSGIServer(
            zope.app.wsgi.WSGIPublisherApplication(self.db),
            threads=8).start()
        self.addCleanup(self.server.stop)

    def tearDown(self):
        gocept.lms.tests.doctest_teardown()

    def test_no_call_fails_and_conflicts_were_retried(self):
        # All clients register the same new URLs at the same moment, and
        # some of their own: each call adds URLs that the others add too.
        # The web server's threads take turns (api.in_steps); another
        # process does not wait for them: here a syncer that adds the
        # shared URLs for client00 as well.
        shared = ['http://shared.example/%d' % i for i in range(1500)]
        start = threading.Barrier(self.clients + 1)
        errors = []

        def register(client_id):
            own = ['http://%s.example/%d' % (client_id, i)
                   for i in range(50)]
            try:
                with proxy(self.server.url + 'lms/') as api:
                    start.wait(30)
                    api.registerURLs(client_id, self.passwords[client_id],
                                     shared + own)
            except Exception as error:
                errors.append((client_id, error))

        def sync():
            def add(site):
                sm = site.getSiteManager()
                sm.getUtility(IClientProvider)['client00'].register_urls(
                    sm.getUtility(IURLProvider).add_multiple(some))
            try:
                start.wait(30)
                for n in range(0, len(shared), 100):
                    some = shared[n:n + 100]
                    gocept.lms.db.in_transaction(
                        self.db, 'lms', add, where='sync')
            except Exception as error:
                errors.append(('sync', error))
        before = web_counts(), gocept.lms.conflicts.counts('sync')
        threads = [threading.Thread(target=register, args=(client_id,))
                   for client_id in self.passwords]
        threads.append(threading.Thread(target=sync))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        after = web_counts(), gocept.lms.conflicts.counts('sync')

        self.assertEqual([], errors)
        conflicts, retries = (
            sum(a[name] - b[name] for a, b in zip(after, before))
            for name in ('conflicts', 'retries'))
        self.assertGreater(conflicts, 0, 'no conflict: the test proves '
                                         'nothing')
        self.assertEqual(conflicts, retries)
        with self.db.transaction() as connection:
            site = gocept.lms.db.root_folder(connection)['lms']
            zope.component.hooks.setSite(site)
            try:
                urls = zope.component.getUtility(IURLProvider)
                self.assertEqual(1500 + 50 * self.clients, len(urls))
                clients = zope.component.getUtility(IClientProvider)
                for client_id in self.passwords:
                    self.assertEqual(1550, len(clients[client_id].url_ids))
            finally:
                zope.component.hooks.setSite(None)


class SteppedCallTests(unittest.TestCase):
    """A large registerURLs call commits in steps; a step that keeps
    meeting other writers gets smaller until it commits."""

    def test_a_step_that_conflicts_is_retried_with_fewer_urls(self):
        calls = []

        def work(some):
            calls.append(len(some))
            if len(calls) <= 2:
                raise ConflictError()
            return [len(some)]

        urls = ['http://example.com/%d' % n for n in range(1000)]
        result = gocept.lms.api.in_steps(work, urls)
        # 500 and 250 conflicted, 125 committed; then the steps grow
        # again, and the last takes what is left
        self.assertEqual([500, 250, 125, 250, 500, 125], calls)
        self.assertEqual([125, 250, 500, 125], result)
        self.assertEqual(1000, sum(result))

    def test_steps_get_no_smaller_than_min_step(self):
        calls = []

        def work(some):
            calls.append(len(some))
            if len(calls) <= 6:
                raise ConflictError()
            return []

        gocept.lms.api.in_steps(
            work, ['http://example.com/%d' % n for n in range(600)])
        self.assertEqual([500, 250, 125, 62, 31, 25, 25], calls[:7])

    def test_a_small_call_is_one_step_whole_in_every_attempt(self):
        calls = []

        def work(some):
            calls.append(len(some))
            if len(calls) <= 2:
                raise ConflictError()
            return list(some)
        urls = ['http://example.com/%d' % n for n in range(400)]
        self.assertEqual(urls, gocept.lms.api.in_steps(work, urls))
        self.assertEqual([400, 400, 400], calls)

    def test_the_threads_of_a_web_server_take_turns(self):
        # A step of one thread is in its transaction; another thread's
        # call starts meanwhile and waits for its turn.
        order = []
        second_called = threading.Event()

        def first(some):
            order.append('first begins')
            second.start()
            second_called.wait(10)
            # Time for the second thread to enter, were it not waiting.
            time.sleep(0.2)
            order.append('first ends')
            return []

        def second_work(some):
            order.append('second begins')
            return []

        def call_second():
            second_called.set()
            gocept.lms.api.in_steps(second_work, ['http://example.com/'])
        second = threading.Thread(target=call_second)
        gocept.lms.api.in_steps(first, ['http://example.com/'])
        second.join(10)
        self.assertEqual(['first begins', 'first ends', 'second begins'],
                         order)
