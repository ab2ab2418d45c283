import doctest
import unittest

from gocept.lms.checking import policy
from gocept.lms.checking.policy import Outcome, decide, HOUR, DAY


def http(status, retry_after=None):
    return Outcome(policy.KIND_HTTP, str(status), status, retry_after)


class PolicyTests(unittest.TestCase):

    settings = policy.PolicySettings()

    def test_history_is_small_and_immutable(self):
        d = decide(http(500), None, 100.0, self.settings)
        self.assertIsInstance(d.history, tuple)
        self.assertEqual(4, len(d.history))
        with self.assertRaises(AttributeError):
            d.history.failures = 7

    def test_plain_tuple_history_is_accepted(self):
        d = decide(http(404), (0.0, 1, 'http 404', False), DAY,
                   self.settings)
        self.assertEqual('unavailable', d.state)
        self.assertEqual(policy.History(0.0, 2, 'http 404', True), d.history)

    def test_unavailable_needs_both_count_and_span(self):
        # many failures within a short time stay orange
        history = None
        for n in range(10):
            d = decide(http(404), history, n * 60.0, self.settings)
            history = d.history
        self.assertEqual('temporary unavailable', d.state)
        # the span alone, with too few failures, stays orange as well
        d = decide(http(500), None, 0.0, self.settings)
        d = decide(http(500), d.history, 3 * DAY, self.settings)
        self.assertEqual('temporary unavailable', d.state)
        d = decide(http(500), d.history, 3 * DAY + HOUR, self.settings)
        self.assertEqual('unavailable', d.state)

    def test_windows_are_configurable(self):
        strict = policy.PolicySettings(definite_failures=1, definite_span=0)
        self.assertEqual(
            'unavailable', decide(http(410), None, 0.0, strict).state)

    def test_next_check_never_below_min_interval(self):
        s = policy.PolicySettings(interval=10, retry_interval=1)
        for outcome in (http(200), http(500), http(429, retry_after=5)):
            self.assertEqual(
                HOUR, decide(outcome, None, 0.0, s).next_check)

    def test_retry_after_extends_but_never_shortens(self):
        d = decide(http(503, retry_after=3 * DAY), None, 0.0, self.settings)
        self.assertEqual(3 * DAY, d.next_check)

    def test_every_kind_is_classified(self):
        kinds = [v for k, v in vars(policy).items() if k.startswith('KIND_')]
        for kind in kinds:
            if kind != policy.KIND_HTTP:
                policy.classify(Outcome(kind))

    def test_states_are_protocol_states(self):
        from gocept.lms.interfaces import STATES
        kinds = [v for k, v in vars(policy).items() if k.startswith('KIND_')]
        for kind in kinds:
            for status in (200, 404, 500, 403):
                d = decide(Outcome(kind, 'x', status), None, 0.0,
                           self.settings)
                self.assertIn(d.state, STATES)


def test_suite():
    suite = unittest.defaultTestLoader.loadTestsFromName(__name__)
    suite.addTest(doctest.DocFileSuite(
        '../policy.txt', package='gocept.lms.checking.tests',
        optionflags=doctest.ELLIPSIS | doctest.REPORT_NDIFF))
    return suite
