"""The checker-* settings: defaults, strings from zope.conf, refusals."""

import unittest

from gocept.lms.checking.settings import CheckerSettings


class SettingsTests(unittest.TestCase):

    def test_defaults(self):
        s = CheckerSettings()
        self.assertEqual(20, s.concurrency)
        self.assertEqual(1.0, s.per_host_rate)
        self.assertEqual((), s.allow_cidrs)
        self.assertFalse(s.mx_check)
        self.assertEqual(3600, s.min_interval)

    def test_from_strings(self):
        s = CheckerSettings.from_dict({
            'concurrency': '50', 'per-host-rate': '0.5',
            'connect_timeout': '5', 'read-timeout': '1m',
            'failure-span': '3d', 'retry-interval': '2h',
            'allow-cidrs': '127.0.1.0/24, 10.5.0.0/16',
            'mx-check': 'on', 'user-agent': 'Bot/1 (+mailto:x@example.com)',
            'lms-name': 'not ours, ignored'})
        self.assertEqual(50, s.concurrency)
        self.assertEqual(0.5, s.per_host_rate)
        self.assertEqual(5.0, s.connect_timeout)
        self.assertEqual(60.0, s.read_timeout)
        self.assertEqual(3 * 86400, s.failure_span)
        self.assertEqual(7200, s.retry_interval)
        self.assertEqual(('127.0.1.0/24', '10.5.0.0/16'), s.allow_cidrs)
        self.assertTrue(s.mx_check)
        self.assertEqual('Bot/1 (+mailto:x@example.com)', s.user_agent)

    def test_prefix_is_strict(self):
        s = CheckerSettings.from_dict(
            {'checker-concurrency': '3', 'other': 'x'}, prefix='checker-')
        self.assertEqual(3, s.concurrency)
        with self.assertRaises(ValueError):
            CheckerSettings.from_dict({'checker-concurency': '3'},
                                      prefix='checker-')

    def test_bad_values(self):
        for bad in ({'mx-check': 'maybe'}, {'read-timeout': 'soon'},
                    {'concurrency': '0'}, {'allow-cidrs': 'nonsense'}):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError):
                    CheckerSettings.from_dict(bad)

    def test_frozen(self):
        with self.assertRaises(AttributeError):
            CheckerSettings().concurrency = 5

    def test_keyword_values_are_checked_too(self):
        with self.assertRaises(ValueError):
            CheckerSettings(concurrency=0)
        with self.assertRaises(ValueError):
            CheckerSettings(allow_cidrs=('not a network',))
        self.assertEqual(('10.0.0.0/8',),
                         CheckerSettings(allow_cidrs='10.1.2.3/8').allow_cidrs)

    def test_a_typo_in_a_switch_is_an_error_not_off(self):
        with self.assertRaises(ValueError) as caught:
            CheckerSettings.from_dict({'check-fragments': 'of'})
        self.assertIn('check-fragments', str(caught.exception))
