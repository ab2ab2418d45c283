"""The login throttle on its own: throttle.txt, and the edge cases."""

import doctest
import threading
import unittest

import zope.testing.loggingsupport

import gocept.lms.settings
from gocept.lms.throttle import LoginThrottle, Limits, Refusal
import gocept.lms.throttle


class Clock:

    now = 1000.0

    def __call__(self):
        return self.now


class Timers:
    """Stands in for threading.Timer: keeps what is scheduled."""

    def __init__(self):
        self.scheduled = []

    def __call__(self, delay, function):
        timer = Timer(delay, function)
        self.scheduled.append(timer)
        return timer


class Timer:

    def __init__(self, delay, function):
        self.delay, self.function = delay, function
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


LIMITS = Limits(per_name=3, per_address=5, window=60, entries=100)


class ThrottleTest(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.throttle = LoginThrottle(self.clock)
        self.log = zope.testing.loggingsupport.InstalledHandler(
            'gocept.lms.throttle')

    def tearDown(self):
        self.log.uninstall()

    def failed(self, name, address='192.0.2.7', limits=LIMITS, times=1):
        for i in range(times):
            self.throttle.failed(name, address, limits)

    def lines(self):
        return [record.getMessage() for record in self.log.records]

    def test_defaults_of_the_settings(self):
        self.assertEqual(
            Limits(per_name=10, per_address=100, window=300.0,
                   entries=10000),
            Limits.from_settings(gocept.lms.settings.Settings()))
        self.assertEqual(
            Limits(per_name=0, per_address=7, window=60.0, entries=500),
            Limits.from_settings(gocept.lms.settings.Settings({
                'login-failures': '0', 'login-failures-per-address': '7',
                'login-window': '60', 'login-throttle-entries': '500'})))

    def test_the_announced_wait_is_enough(self):
        limits = Limits(per_name=7, per_address=100, window=100, entries=10)
        self.failed('x', limits=limits, times=7)
        refusal = self.throttle.refusal('x', '192.0.2.7', limits)
        # 100/7 seconds, rounded up.
        self.assertEqual(Refusal(15, 'for x'), refusal)
        self.clock.now += refusal.seconds - 1
        self.assertIsNotNone(self.throttle.refusal('x', '192.0.2.7', limits))
        self.clock.now += 1
        self.assertIsNone(self.throttle.refusal('x', '192.0.2.7', limits))

    def test_refusals_remember_nothing_new(self):
        # Lookups of names and addresses that never failed (every right
        # password) must not fill the memory.
        for i in range(1000):
            self.assertIsNone(self.throttle.refusal(
                'client %d' % i, '192.0.2.%d' % (i % 250), LIMITS))
        self.assertEqual(0, len(self.throttle._entries))
        self.throttle.report(LIMITS)
        self.assertEqual([], self.lines())

    def test_the_longer_of_two_refusals_counts(self):
        limits = Limits(per_name=2, per_address=3, window=60, entries=100)
        self.failed('a', limits=limits, times=2)
        self.failed('b', limits=limits)
        # The name: 30 s; the address: 20 s.
        self.assertEqual(Refusal(30, 'for a'),
                         self.throttle.refusal('a', '192.0.2.7', limits))
        self.assertEqual(Refusal(20, 'from 192.0.2.7'),
                         self.throttle.refusal('c', '192.0.2.7', limits))

    def test_long_names_and_addresses_are_cut(self):
        long = 'client ' + 'x' * 100000
        self.failed(long, address='y' * 100000, times=3)
        self.assertEqual(
            Refusal(20, 'for ' + long[:97] + '...'),
            self.throttle.refusal(long, '192.0.2.7', LIMITS))
        # The same beginning is the same name.
        self.assertIsNotNone(
            self.throttle.refusal(long + 'z', '192.0.2.7', LIMITS))
        self.assertTrue(all(
            len(label) <= gocept.lms.throttle.LABEL_LENGTH
            for kind, label in self.throttle._entries))

    def test_memory_is_bounded(self):
        limits = Limits(per_name=3, per_address=5, window=60, entries=100)
        for i in range(5000):
            self.throttle.failed('client %d' % i, '192.0.2.%d' % (i % 200),
                                 limits)
        self.assertEqual(100, len(self.throttle._entries))

    def test_a_summary_has_a_bounded_number_of_lines(self):
        for i in range(30):
            self.failed('client %02d' % i, times=1 + i % 3)
        self.throttle.report(LIMITS)
        lines = self.lines()
        self.assertEqual(gocept.lms.throttle.REPORT_LINES + 1, len(lines))
        # The busiest first: the address, then clients with three.
        self.assertIn(': 60 from 192.0.2.7, for client 00, client 01, '
                      'client 02, client 03, client 04 and others', lines[0])
        self.assertIn(': 3 for client 02, from 192.0.2.7', lines[1])
        self.assertIn(': 33 more counted for 21 other names and addresses',
                      lines[-1])

    def test_addresses_listed_for_a_name(self):
        for i in range(8):
            self.failed("client 'fred'", address='192.0.2.%d' % i)
        self.failed("client 'fred'", address='192.0.2.0')
        self.throttle.report(LIMITS)
        self.assertIn(
            ": 9 for client 'fred', from 192.0.2.0, 192.0.2.1, 192.0.2.2, "
            "192.0.2.3, 192.0.2.4 and others", self.lines()[0])

    def test_the_timer_writes_the_summary_when_nobody_calls(self):
        timers = Timers()
        throttle = LoginThrottle(self.clock, schedule=timers)
        self.assertTrue(throttle.failed('x', '192.0.2.7', LIMITS))
        self.assertFalse(throttle.failed('x', '192.0.2.8', LIMITS))
        [timer] = timers.scheduled
        # A second late, so that the window is surely over.
        self.assertEqual(61, timer.delay)
        self.clock.now += 61
        timer.function()
        self.assertEqual(
            ['Failed logins in the last 61 s: 2 for x, from 192.0.2.7, '
             '192.0.2.8',
             'Failed logins in the last 61 s: 1 from 192.0.2.7, for x',
             'Failed logins in the last 61 s: 1 from 192.0.2.8, for x'],
            self.lines())
        # The failures may go on: the next window has a timer, too. It
        # finds nothing to report and ends the spell.
        self.assertTrue(timer.cancelled)
        [old, timer] = timers.scheduled
        self.clock.now += 61
        timer.function()
        self.assertEqual(3, len(self.lines()))
        self.assertIsNone(throttle._since)
        self.assertTrue(throttle.failed('x', '192.0.2.7', LIMITS))

    def test_a_timer_of_a_window_already_reported_does_nothing(self):
        timers = Timers()
        throttle = LoginThrottle(self.clock, schedule=timers)
        throttle.failed('x', '192.0.2.7', LIMITS)
        self.clock.now += 30
        throttle.report(LIMITS)
        self.clock.now += 31
        self.assertEqual(2, len(self.lines()))
        # The first window's timer fires after the report began a new one.
        timers.scheduled[0].function()
        self.assertEqual(2, len(self.lines()))

    def test_close_cancels_the_timer(self):
        timers = Timers()
        throttle = LoginThrottle(self.clock, schedule=timers)
        throttle.failed('x', '192.0.2.7', LIMITS)
        throttle.close()
        self.assertTrue(timers.scheduled[0].cancelled)

    def test_threads(self):
        limits = Limits(per_name=10 ** 6, per_address=10 ** 6, window=60,
                        entries=100)

        def guess(address):
            for i in range(500):
                self.throttle.refusal("client 'fred'", address, limits)
                self.throttle.failed("client 'fred'", address, limits)
        threads = [threading.Thread(target=guess, args=('192.0.2.%d' % i,))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.throttle.report(limits)
        self.assertIn(": 4000 for client 'fred', from ", self.lines()[0])


class ProcessThrottle(unittest.TestCase):

    def tearDown(self):
        gocept.lms.throttle.reset()

    def test_one_throttle_per_process_until_reset(self):
        throttle = gocept.lms.throttle.logins()
        self.assertIs(throttle, gocept.lms.throttle.logins())
        throttle.failed('x', '192.0.2.7', LIMITS)
        timer = throttle._timer
        self.assertTrue(timer.daemon)
        gocept.lms.throttle.reset()
        self.assertTrue(timer.finished.is_set())  # cancelled
        timer.join(10)
        self.assertFalse(timer.is_alive())
        self.assertIsNot(throttle, gocept.lms.throttle.logins())


def test_suite():
    suite = unittest.defaultTestLoader.loadTestsFromName(__name__)
    suite.addTest(doctest.DocFileSuite(
        '../throttle.txt', package='gocept.lms.tests',
        optionflags=doctest.ELLIPSIS | doctest.REPORT_NDIFF))
    return suite
