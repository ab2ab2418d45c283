"""Edge cases of the syncer."""

import datetime
import unittest
import unittest.mock

import psycopg2
import transaction
import zope.app.appsetup.product
import zope.component
import zope.component.hooks

import gocept.lms.backoff
import gocept.lms.client
import gocept.lms.journal
import gocept.lms.settings
import gocept.lms.sync
import gocept.lms.tests
from gocept.lms.interfaces import DISABLED_BY_CLIENT, DISABLED_BY_LMS
from gocept.lms.interfaces import IChangeJournal, IClientProvider
from gocept.lms.interfaces import IURLProvider
from gocept.lms.interfaces import INotifications, ISynchronization
from gocept.lms.tests.servers import LMSFixture


T0 = datetime.datetime(2026, 3, 1, 2, 0, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
MINUTE = datetime.timedelta(minutes=1)


def due(state, now):
    """Whether the syncer, with the test configuration, syncs now."""
    return state.due(now, gocept.lms.settings.get())


class SyncTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        transaction.commit()
        self.xmlrpc = gocept.lms.tests.install_xmlrpcdummy()
        self.clients = zope.component.getUtility(IClientProvider)
        self.urls = zope.component.getUtility(IURLProvider)

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()
        zope.app.appsetup.product.setProductConfiguration(
            'gocept.lms', self.layer.config)

    def add_client(self, id, links=None):
        client = gocept.lms.client.Client(id)
        client.callback = 'http://%s.example.com/db/' % id
        client.set_password('pw-' + id, gocept.lms.tests.key_file())
        client.contact_email = '%s@example.com' % id
        self.clients.add(client)
        if links is not None:
            self.xmlrpc.links[client.callback] = links
        transaction.commit()
        return client


    def sync_while_states_are_refused(self):
        """Sync at T0 with clients that answer getAllLinks but fail to
        take the states."""
        def broken(self, *args):
            raise OSError('connection reset')
        with unittest.mock.patch.object(
                gocept.lms.tests.DummyProxy, 'updateManyStates', broken):
            return gocept.lms.sync.run(T0)
    def configure(self, **settings):
        config = dict(self.layer.config)
        config.update({k.replace('_', '-'): str(v)
                       for k, v in settings.items()})
        zope.app.appsetup.product.setProductConfiguration(
            'gocept.lms', config)

    def url_set(self, client):
        return sorted(u.url for u in client.urls)

    def test_a_database_away_at_the_start_of_the_run_is_waited_for(self):
        # PostgreSQL restarting just as bin/sync reads the client list:
        # the run waits for it, as its steps do, instead of ending.
        self.add_client('fred', ['http://a.example/'])
        real = zope.component.getUtility
        away = [psycopg2.OperationalError('server closed the connection')]

        def get_utility(*args, **kw):
            if away and args[0] is IClientProvider:
                raise away.pop()
            return real(*args, **kw)
        with unittest.mock.patch('zope.component.getUtility', get_utility):
            results, failures = gocept.lms.sync.run(T0)
        self.assertEqual([], away)
        self.assertEqual(([], ['fred']),
                         (failures, [r.client_id for r in results]))

    def test_duplicates_and_junk_in_the_answer_are_dropped(self):
        fred = self.add_client('fred', [
            'http://a.example/', 'http://a.example/', '', None, 42,
            ['nested'], 'http://ä.example/', 'x' * 5000, 'mailto:x@y.example',
            'relative/path', 'ftp://f.example/file'])
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual([], failures)
        self.assertEqual(
            ['ftp://f.example/file', 'http://a.example/',
             'mailto:x@y.example'], self.url_set(fred))
        self.assertEqual(11, results[0].fetched)
        self.assertEqual(3, results[0].added)
        self.assertEqual(3, results[0].notified)
        states = self.xmlrpc.states['fred']
        self.assertEqual(
            sorted([u, 'unknown', 'unknown'] for u in self.url_set(fred)),
            sorted(states))

    def test_an_answer_that_is_not_a_list_fails_the_client(self):
        fred = self.add_client('fred', {'not': 'a list'})
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual([], results)
        self.assertEqual('fred', failures[0][0])
        self.assertIn('not a list', failures[0][1])
        self.assertEqual(1, ISynchronization(fred).failures)

    def test_a_failing_client_does_not_stop_the_others(self):
        fred = self.add_client('fred', ['http://a.example/'])
        self.add_client('barney', ['http://b.example/'])
        self.xmlrpc.fail.add(fred.callback)
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual(['barney'], [r.client_id for r in results])
        self.assertEqual(['fred'], [f[0] for f in failures])
        self.assertIn('Connection refused', failures[0][1])
        self.assertEqual([], self.url_set(fred))
        state = ISynchronization(fred)
        self.assertEqual((None, T0, 1), (state.last, state.last_attempt,
                                         state.failures))
        self.assertIn('ConnectionRefusedError', state.last_error)

    def test_failure_while_sending_keeps_the_list_and_fails_the_sync(self):
        # The list the client sent is its own account of its links, so it
        # stays reconciled; the states did not arrive, so the sync counts
        # as failed, the changes stay pending, and the retry sends again.
        fred = self.add_client('fred', ['http://a.example/'])
        results, failures = self.sync_while_states_are_refused()
        self.assertEqual(['fred'], [f[0] for f in failures])
        self.assertEqual(['http://a.example/'], self.url_set(fred))
        state = ISynchronization(fred)
        self.assertEqual((None, 1), (state.last, state.failures))
        self.assertIn('connection reset', state.last_error)
        results, failures = gocept.lms.sync.run(T0 + 30 * MINUTE)
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertEqual(['http://a.example/'],
                         [s[0] for s in self.xmlrpc.states['fred']])

    def test_failed_client_is_retried_with_growing_backoff(self):
        fred = self.add_client('fred', ['http://a.example/'])
        self.configure(sync_retry=30, sync_interval=23)
        self.xmlrpc.fail.add(fred.callback)
        gocept.lms.sync.run(T0)
        state = ISynchronization(fred)
        self.assertFalse(due(state, T0 + 29 * MINUTE))
        self.assertTrue(due(state, T0 + 30 * MINUTE))
        gocept.lms.sync.run(T0 + 30 * MINUTE)
        self.assertEqual(2, state.failures)
        self.assertFalse(due(state, T0 + 89 * MINUTE))
        self.assertTrue(due(state, T0 + 90 * MINUTE))
        # The backoff never exceeds the daily interval.
        state.failures = 20
        self.assertTrue(due(state, state.last_attempt + 23 * HOUR))
        # Once the client is back, a success resets the count.
        self.xmlrpc.fail.clear()
        results, failures = gocept.lms.sync.run(T0 + 24 * HOUR)
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertEqual(0, state.failures)
        self.assertIsNone(state.last_error)

    def test_the_backoff_is_capped_at_any_failure_count(self):
        # 30 minutes * 2 ** (failures - 1) is more than a timedelta holds
        # from 37 failures on.
        fred = self.add_client('fred', ['http://a.example/'])
        self.configure(sync_retry=30, sync_interval=23)
        state = ISynchronization(fred)
        state.last_attempt = T0
        for failures in (37, 1000, 10 ** 6):
            state.failures = failures
            self.assertFalse(due(state, T0 + 23 * HOUR - MINUTE), failures)
            self.assertTrue(due(state, T0 + 23 * HOUR), failures)

    def test_a_client_down_for_ages_is_still_tried_daily(self):
        fred = self.add_client('fred', ['http://a.example/'])
        self.configure(sync_retry=30, sync_interval=23)
        self.xmlrpc.fail.add(fred.callback)
        state = ISynchronization(fred)
        state.failures = 10 ** 6
        state.last_attempt = T0 - 23 * HOUR
        transaction.commit()
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual(['fred'], [f[0] for f in failures])
        self.assertEqual(10 ** 6 + 1, state.failures)
        self.assertEqual(([], []), gocept.lms.sync.run(T0 + 22 * HOUR))
        self.xmlrpc.fail.clear()
        results, failures = gocept.lms.sync.run(T0 + 23 * HOUR)
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertEqual(0, state.failures)

    def test_backoff(self):
        backoff = gocept.lms.backoff.backoff
        self.assertEqual(datetime.timedelta(0), backoff(0, MINUTE, HOUR))
        self.assertEqual(MINUTE, backoff(1, MINUTE, HOUR))
        self.assertEqual(32 * MINUTE, backoff(6, MINUTE, HOUR))
        self.assertEqual(HOUR, backoff(7, MINUTE, HOUR))
        self.assertEqual(HOUR, backoff(10 ** 9, MINUTE, HOUR))
        # A first wait beyond the longest, or none at all.
        self.assertEqual(HOUR, backoff(1, 2 * HOUR, HOUR))
        self.assertEqual(datetime.timedelta(0),
                         backoff(10 ** 9, datetime.timedelta(0), HOUR))
        # Exact at the boundary: no doubling past the longest wait.
        self.assertEqual(HOUR, backoff(3, 15 * MINUTE, HOUR))
        self.assertEqual(30 * MINUTE, backoff(2, 15 * MINUTE, HOUR))

    def test_successful_client_is_due_again_after_the_interval(self):
        fred = self.add_client('fred', ['http://a.example/'])
        self.configure(sync_interval=23)
        gocept.lms.sync.run(T0)
        state = ISynchronization(fred)
        self.assertEqual(T0, state.last)
        self.assertFalse(due(state, T0 + 22 * HOUR + 59 * MINUTE))
        self.assertTrue(due(state, T0 + 23 * HOUR))

    def test_clients_with_disabled_notifications_are_skipped(self):
        fred = self.add_client('fred', ['http://a.example/'])
        INotifications(fred).enabled = False
        ISynchronization(fred).force = True
        transaction.commit()
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual(([], []), (results, failures))
        self.assertEqual([], self.xmlrpc.log)
        # Asked for by name, the syncer says why it does nothing.
        results, failures = gocept.lms.sync.run(T0, only=['fred'])
        self.assertEqual([], results)
        self.assertIn('notifications are disabled', failures[0][1])
        self.assertEqual([], self.xmlrpc.log)

    def switched_off_by_the_lms(self, client, when):
        notifications = INotifications(client)
        notifications.failed = 20
        notifications.failing_since = when - 24 * HOUR
        notifications.switch_off(DISABLED_BY_LMS, when)
        transaction.commit()
        return notifications

    def test_a_client_the_lms_switched_off_is_tried_daily(self):
        smtp = gocept.lms.tests.start_smtp_server()
        fred = self.add_client('fred', ['http://a.example/'])
        gocept.lms.sync.run(T0)
        notifications = self.switched_off_by_the_lms(fred, T0 + HOUR)
        self.xmlrpc.fail.add(fred.callback)
        # Due a day after its last sync, as every client.
        self.assertEqual(([], []), gocept.lms.sync.run(T0 + 22 * HOUR))
        results, failures = gocept.lms.sync.run(T0 + 23 * HOUR)
        self.assertEqual(['fred'], [f[0] for f in failures])
        # Not again half an hour later (sync-retry): a day later.
        self.assertEqual(
            ([], []), gocept.lms.sync.run(T0 + 46 * HOUR - MINUTE))
        self.assertFalse(notifications.enabled)
        self.xmlrpc.fail.clear()
        results, failures = gocept.lms.sync.run(T0 + 46 * HOUR)
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertEqual(
            (True, None, 0, None, None),
            (notifications.enabled, notifications.disabled_by,
             notifications.failed, notifications.failing_since,
             notifications.disabled_at))
        self.assertEqual([['http://a.example/', 'unknown', 'unknown']],
                         self.xmlrpc.states['fred'][-1:])
        sender, recipients, mail = smtp.wait(1)[0]
        self.assertEqual(['fred@example.com'], recipients)
        self.assertIn('fred are switched on again', mail['Subject'])
        self.assertIn('(%s)' % '2026-03-01 03:00 UTC', mail.get_content())
        # The next syncs are ordinary ones: no more mails.
        gocept.lms.sync.run(T0 + 70 * HOUR)
        self.assertEqual(1, len(smtp.messages))

    def test_notifications_come_back_only_after_a_whole_sync(self):
        # The client answers xmlrpc_getAllLinks but does not take the
        # states: it is not back yet.
        smtp = gocept.lms.tests.start_smtp_server()
        fred = self.add_client('fred', ['http://a.example/'])
        notifications = self.switched_off_by_the_lms(fred, T0)
        results, failures = self.sync_while_states_are_refused()
        self.assertEqual(['fred'], [f[0] for f in failures])
        self.assertEqual((False, DISABLED_BY_LMS),
                         (notifications.enabled, notifications.disabled_by))
        self.assertEqual([], smtp.messages)

    def test_asked_for_by_name_the_lms_switched_off_client_is_tried(self):
        gocept.lms.tests.start_smtp_server()
        fred = self.add_client('fred', ['http://a.example/'])
        gocept.lms.sync.run(T0)
        notifications = self.switched_off_by_the_lms(fred, T0 + HOUR)
        results, failures = gocept.lms.sync.run(T0 + 2 * HOUR,
                                                only=['fred'])
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertTrue(notifications.enabled)

    def test_switched_off_before_the_lms_noted_who_did_it(self):
        # Databases from before hold only `enabled` and the count: the
        # LMS switched off a client it had failed to reach, a client that
        # switched itself off was reachable.
        fred = self.add_client('fred', ['http://a.example/'])
        barney = self.add_client('barney', ['http://b.example/'])
        INotifications(fred).enabled = False
        INotifications(fred).failed = 20
        INotifications(barney).enabled = False
        transaction.commit()
        self.assertEqual(DISABLED_BY_LMS, INotifications(fred).disabled_by)
        self.assertEqual(DISABLED_BY_CLIENT,
                         INotifications(barney).disabled_by)
        smtp = gocept.lms.tests.start_smtp_server()
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual((['fred'], []),
                         ([r.client_id for r in results], failures))
        self.assertTrue(INotifications(fred).enabled)
        self.assertFalse(INotifications(barney).enabled)
        mail = smtp.wait(1)[0][2]
        self.assertIn('(time not recorded)', mail.get_content())

    def test_force_syncs_a_client_that_is_not_due_and_is_reset(self):
        fred = self.add_client('fred', ['http://a.example/'])
        gocept.lms.sync.run(T0)
        self.xmlrpc.links[fred.callback] = ['http://b.example/']
        self.assertEqual(([], []), gocept.lms.sync.run(T0 + HOUR))
        ISynchronization(fred).force = True
        transaction.commit()
        results, failures = gocept.lms.sync.run(T0 + HOUR)
        self.assertEqual(1, len(results))
        self.assertEqual((1, 1), (results[0].added, results[0].removed))
        self.assertEqual(['http://b.example/'], self.url_set(fred))
        self.assertFalse(ISynchronization(fred).force)
        # a.example had no other client and is gone
        self.assertIsNone(self.urls.get_url('http://a.example/'))

    def test_force_all_and_only(self):
        self.add_client('fred', ['http://a.example/'])
        self.add_client('barney', ['http://a.example/'])
        gocept.lms.sync.run(T0)
        results, _ = gocept.lms.sync.run(T0 + HOUR, only=['barney'])
        self.assertEqual(['barney'], [r.client_id for r in results])
        results, _ = gocept.lms.sync.run(T0 + HOUR, force_all=True)
        self.assertEqual(['barney', 'fred'],
                         sorted(r.client_id for r in results))

    def test_states_go_out_in_bounded_batches(self):
        links = ['http://a.example/%d' % i for i in range(2500)]
        self.add_client('fred', links)
        self.configure(callback_batch_size=1000)
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual(2500, results[0].notified)
        self.assertEqual(
            ['Connect: http://fred.example.com/db/', 'Get all links',
             'Connect: http://fred.example.com/db/',
             'Update many states: fred - 1000',
             'Update many states: fred - 1000',
             'Update many states: fred - 500'], self.xmlrpc.log)
        self.assertEqual(
            sorted(links), sorted(s[0] for s in self.xmlrpc.states['fred']))

    def test_sync_sends_known_states_and_clears_pending(self):
        fred = self.add_client('fred', ['http://a.example/'])
        gocept.lms.sync.run(T0)
        url = self.urls.get_url('http://a.example/')
        url.update_check('unavailable', T0 + HOUR, '404 Not Found')
        # The notifier hands the change to fred's pending map.
        gocept.lms.journal.distribute(
            zope.component.getUtility(IChangeJournal), self.urls,
            self.clients)
        self.assertEqual([url.id], list(INotifications(fred).pending))
        transaction.commit()
        self.xmlrpc.states.clear()
        gocept.lms.sync.run(T0 + 2 * HOUR, force_all=True)
        self.assertEqual([['http://a.example/', 'unavailable',
                           '404 Not Found']], self.xmlrpc.states['fred'])
        self.assertEqual([], list(INotifications(fred).pending))

    def test_many_clients_sharing_urls(self):
        shared = ['http://shared.example/%d' % i for i in range(50)]
        for i in range(30):
            self.add_client(
                'c%02d' % i, shared + ['http://own.example/%d' % i])
        results, failures = gocept.lms.sync.run(T0)
        self.assertEqual((30, []), (len(results), failures))
        self.assertEqual(80, len(self.urls))
        url = self.urls.get_url('http://shared.example/7')
        self.assertEqual(30, len(url.clients))
        for client in self.clients.values():
            self.assertEqual(51, len(client.urls))

    def test_a_client_removed_between_runs_is_gone_with_its_urls(self):
        self.add_client('fred', ['http://a.example/', 'http://s.example/'])
        self.add_client('barney', ['http://s.example/'])
        gocept.lms.sync.run(T0)
        self.clients.remove('fred')
        transaction.commit()
        results, failures = gocept.lms.sync.run(T0 + 24 * HOUR)
        self.assertEqual((['barney'], []),
                         ([r.client_id for r in results], failures))
        self.assertIsNone(self.urls.get_url('http://a.example/'))
        self.assertEqual(
            {'barney'}, self.urls.get_url('http://s.example/').clients)

    def remove_elsewhere(self, client_id):
        """Remove the client as another process does: on a connection of
        its own, in a transaction of its own, committed at once."""
        db = self.layer.getRootFolder()._p_jar.db()
        tm = transaction.TransactionManager()
        connection = db.open(tm)
        try:
            with tm:
                site = connection.root()['Application'][self.site.__name__]
                site.getSiteManager().getUtility(IClientProvider).remove(
                    client_id)
        finally:
            connection.close()

    def sync_removing(self, client_id, when_fetching):
        """Run the syncer; another process removes `client_id` while the
        syncer fetches the list of `when_fetching`."""
        original = gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks
        removed = []

        def fetch(proxy, fetched_id, password):
            # The syncer holds no transaction open while it waits for
            # the client's answer.
            if fetched_id == when_fetching and not removed:
                self.remove_elsewhere(client_id)
                removed.append(client_id)
            return original(proxy, fetched_id, password)
        gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks = fetch
        try:
            results, failures = gocept.lms.sync.run(T0)
        finally:
            gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks = original
        self.assertEqual([client_id], removed)
        return [r.client_id for r in results], failures

    def test_a_client_removed_while_another_syncs_is_skipped(self):
        self.add_client('fred', ['http://a.example/'])
        self.add_client('barney', ['http://b.example/'])
        # barney syncs first (ids are sorted).
        self.assertEqual((['barney'], []),
                         self.sync_removing('fred', when_fetching='barney'))
        transaction.begin()
        self.assertNotIn('fred', self.clients)
        self.assertIsNone(self.urls.get_url('http://a.example/'))

    def test_a_client_removed_during_its_own_sync_gets_nothing_stored(self):
        self.add_client('fred', ['http://a.example/', 'http://f.example/'])
        self.add_client('barney', ['http://b.example/'])
        gocept.lms.sync.run(T0 - 24 * HOUR)
        # fred's list now has a URL new to the LMS; fred is removed while
        # the syncer fetches it, between the syncer's transactions.
        self.xmlrpc.links['http://fred.example.com/db/'] = [
            'http://a.example/', 'http://new.example/']
        self.assertEqual((['barney'], []),
                         self.sync_removing('fred', when_fetching='fred'))
        transaction.begin()
        self.assertNotIn('fred', self.clients)
        # Removing fred dropped his URLs; his sync added none back.
        for url in ('http://a.example/', 'http://f.example/',
                    'http://new.example/'):
            self.assertIsNone(self.urls.get_url(url), url)
        self.assertIsNotNone(self.urls.get_url('http://b.example/'))

    def test_the_client_gets_its_own_credentials(self):
        self.add_client('fred', ['http://a.example/'])
        calls = []
        original = gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks

        def record(proxy, client_id, password):
            calls.append((client_id, password))
            return original(proxy, client_id, password)
        gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks = record
        try:
            gocept.lms.sync.run(T0)
        finally:
            gocept.lms.tests.DummyProxy.xmlrpc_getAllLinks = original
        self.assertEqual([('fred', 'pw-fred')], calls)


class SwitchedOffOverTheAPI(unittest.TestCase):
    """setClientNotifications tells the syncer whose choice it was."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.lms = LMSFixture().setUp()
        self.password = self.lms.register_client('fred')
        self.api = self.lms.proxy()
        self.xmlrpc = gocept.lms.tests.install_xmlrpcdummy()

    def tearDown(self):
        self.api('close')()
        transaction.abort()
        self.lms.tearDown()
        gocept.lms.tests.doctest_teardown()

    def notifications(self):
        """Fred's notifications, as the web server committed them."""
        transaction.begin()
        site = self.layer.getRootFolder()['lms']
        zope.component.hooks.setSite(site)
        return INotifications(
            zope.component.getUtility(IClientProvider)['fred'])

    def test_a_client_that_switched_off_itself_is_left_alone(self):
        self.assertTrue(
            self.api.setClientNotifications('fred', self.password, False))
        notifications = self.notifications()
        self.assertEqual((False, DISABLED_BY_CLIENT),
                         (notifications.enabled, notifications.disabled_by))
        disabled_at = notifications.disabled_at
        self.assertIsNotNone(disabled_at)
        # Saying it again does not move the time it was switched off.
        self.api.setClientNotifications('fred', self.password, False)
        self.assertEqual(disabled_at, self.notifications().disabled_at)
        for days in (1, 2, 30):
            self.assertEqual(
                ([], []), gocept.lms.sync.run(T0 + days * 24 * HOUR))
        self.assertEqual([], self.xmlrpc.log)

    def test_switching_off_what_the_lms_switched_off(self):
        # The client's own choice wins over the LMS's: left alone.
        notifications = self.notifications()
        notifications.failed = 20
        notifications.switch_off(DISABLED_BY_LMS, T0)
        transaction.commit()
        self.api.setClientNotifications('fred', self.password, False)
        notifications = self.notifications()
        self.assertEqual(DISABLED_BY_CLIENT, notifications.disabled_by)
        self.assertEqual(([], []), gocept.lms.sync.run(T0 + 48 * HOUR))
        self.assertEqual([], self.xmlrpc.log)

    def test_switching_on_forgets_the_failures(self):
        notifications = self.notifications()
        notifications.failed = 20
        notifications.failing_since = T0 - 24 * HOUR
        notifications.switch_off(DISABLED_BY_LMS, T0)
        transaction.commit()
        self.assertTrue(
            self.api.setClientNotifications('fred', self.password, True))
        notifications = self.notifications()
        self.assertEqual(
            (True, None, 0, None, None),
            (notifications.enabled, notifications.disabled_by,
             notifications.failed, notifications.failing_since,
             notifications.disabled_at))
