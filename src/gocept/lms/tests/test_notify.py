"""Edge cases of the notifier's backoff and switching off (notify.txt tells
the story)."""

import datetime
import unittest

import transaction
import zope.component

import gocept.lms.client
import gocept.lms.notify
import gocept.lms.tests
from gocept.lms.interfaces import DISABLED_BY_CLIENT, DISABLED_BY_LMS
from gocept.lms.interfaces import IClientProvider, INotifications
from gocept.lms.interfaces import IURLProvider


T0 = datetime.datetime(2026, 3, 1, 2, 0, tzinfo=datetime.timezone.utc)
SECOND = datetime.timedelta(seconds=1)
HOUR = datetime.timedelta(hours=1)


class NotifierFailures(unittest.TestCase):
    """fred's callback refuses every push; he has one change pending."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        root = self.layer.getRootFolder()
        gocept.lms.tests.site_setup(root)
        self.xmlrpc = gocept.lms.tests.install_xmlrpcdummy()
        self.smtp = gocept.lms.tests.start_smtp_server()
        fred = gocept.lms.client.Client('fred')
        fred.callback = 'http://fred.example.com/db/'
        fred.set_password('pw', gocept.lms.tests.key_file())
        fred.contact_email = 'fred@example.com'
        zope.component.getUtility(IClientProvider).add(fred)
        url = zope.component.getUtility(IURLProvider).add('http://a.example/')
        url.update_check('ok', T0, '200 OK')
        fred.register_urls([url])
        self.url_id = url.id
        self.notifications = INotifications(fred)
        self.notifications.pending.note(url.id, 1)
        transaction.commit()
        self.callback = fred.callback
        self.xmlrpc.fail.add(self.callback)
        self.db = root._p_jar.db()

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def push(self, when):
        """A round of the notifier (with the settings of this moment)."""
        result = gocept.lms.notify.Notifier(self.db).run_once(now=when)
        transaction.begin()
        return result

    def test_a_million_failures_wait_the_longest_retry(self):
        self.notifications.failed = 10 ** 6
        self.notifications.failing_since = T0 - HOUR
        self.notifications.last_attempt = T0
        transaction.commit()
        self.assertEqual({}, self.push(T0 + 3599 * SECOND))
        self.assertEqual({'fred': 0}, self.push(T0 + 3600 * SECOND))
        self.assertEqual(10 ** 6 + 1, self.notifications.failed)

    def test_never_sooner_than_the_notify_interval(self):
        gocept.lms.tests.configure(notify_interval=100, notify_retry=1)
        self.assertEqual({'fred': 0}, self.push(T0))
        self.assertEqual({}, self.push(T0 + 99 * SECOND))
        self.assertEqual({'fred': 0}, self.push(T0 + 100 * SECOND))

    def test_a_long_time_with_too_few_failures_keeps_them_on(self):
        gocept.lms.tests.configure(notify_max_failures=5)
        for hours in (0, 24, 48, 72):
            self.push(T0 + hours * HOUR)
        self.assertEqual((True, 4), (self.notifications.enabled,
                                     self.notifications.failed))
        self.push(T0 + 96 * HOUR)
        self.assertEqual((False, DISABLED_BY_LMS, T0),
                         (self.notifications.enabled,
                          self.notifications.disabled_by,
                          self.notifications.failing_since))
        mail = self.smtp.wait(1)[0][2]
        self.assertIn('since 2026-03-01 02:00 UTC (5 attempts failed)',
                      mail.get_content())
        self.assertIn('off at 2026-03-05 02:00 UTC', mail.get_content())

    def test_a_success_ends_the_run_of_failures(self):
        gocept.lms.tests.configure(notify_max_failures=2)
        self.push(T0)
        self.xmlrpc.fail.clear()
        self.assertEqual({'fred': 1}, self.push(T0 + 20 * HOUR))
        self.assertEqual((0, None), (self.notifications.failed,
                                     self.notifications.failing_since))
        # A new run of failures has a clock of its own: it is not
        # switched off a day after the first run began.
        self.xmlrpc.fail.add(self.callback)
        self.notifications.pending.note(self.url_id, 2)
        transaction.commit()
        self.push(T0 + 25 * HOUR)
        self.push(T0 + 26 * HOUR)
        self.assertEqual((True, 2, T0 + 25 * HOUR),
                         (self.notifications.enabled,
                          self.notifications.failed,
                          self.notifications.failing_since))

    def test_failures_from_before_the_upgrade_start_their_clock(self):
        # Stored before failing_since existed: 30 failures, no start time.
        self.notifications.failed = 30
        transaction.commit()
        self.push(T0)
        self.assertEqual((True, 31, T0),
                         (self.notifications.enabled,
                          self.notifications.failed,
                          self.notifications.failing_since))

    def test_a_client_that_switched_off_itself_meanwhile_stays_so(self):
        # The client calls setClientNotifications(false) while a push to
        # it fails: its choice is kept, and nobody is mailed.
        gocept.lms.tests.configure(notify_max_failures=1,
                                   notify_failure_hours=0)
        db = self.layer.getRootFolder()._p_jar.db()
        original = gocept.lms.tests.DummyProxy.updateManyStates

        def switched_off_meanwhile(proxy, *args):
            tm = transaction.TransactionManager()
            with tm:
                site = db.open(tm).root()['Application']['app']
                client = site.getSiteManager().getUtility(
                    IClientProvider)['fred']
                INotifications(client).switch_off(DISABLED_BY_CLIENT, T0)
            return original(proxy, *args)
        gocept.lms.tests.DummyProxy.updateManyStates = switched_off_meanwhile
        try:
            self.assertEqual({'fred': 0}, self.push(T0))
        finally:
            gocept.lms.tests.DummyProxy.updateManyStates = original
        self.assertEqual((False, DISABLED_BY_CLIENT, 1),
                         (self.notifications.enabled,
                          self.notifications.disabled_by,
                          self.notifications.failed))
        self.assertEqual([], self.smtp.messages)
