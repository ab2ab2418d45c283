"""Per-state URL counters: schema evolution and concurrent changes."""

import unittest

import transaction
import zope.component

import gocept.lms.generations.evolve3
import gocept.lms.tests
from gocept.lms.interfaces import IStateCounts, IURLProvider


class StateCountsTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_evolve3_adds_the_counters_with_the_current_counts(self):
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        urls = zope.component.getUtility(IURLProvider)
        a, b, c = urls.add_multiple(
            ['http://a.example/', 'http://b.example/', 'http://c.example/'])
        sm = site.getSiteManager()
        # a site from before the counters existed
        sm.unregisterUtility(sm.getUtility(IStateCounts), IStateCounts)
        del sm['default']['state-counts']
        a.update_check('ok', a.last_check, 'fine')  # nobody counts this

        self.assertTrue(
            gocept.lms.generations.evolve3.add_state_counts(site))
        counts = sm.getUtility(IStateCounts)
        self.assertEqual(1, counts['ok'])
        self.assertEqual(2, counts['unknown'])
        self.assertFalse(
            gocept.lms.generations.evolve3.add_state_counts(site))

    def test_concurrent_changes_add_up(self):
        root = self.layer.getRootFolder()
        gocept.lms.tests.site_setup(root)
        urls = zope.component.getUtility(IURLProvider)
        a, b = urls.add_multiple(['http://a.example/', 'http://b.example/'])
        transaction.commit()

        # A second process changes another URL at the same time.
        tm = transaction.TransactionManager()
        other = self.layer.db.open(tm)
        other_urls = other.get(urls._p_oid)
        other_urls.by_id(b.id).update_check('unavailable', None, 'gone')

        a.update_check('ok', None, 'fine')
        transaction.commit()
        tm.commit()
        other.close()

        transaction.begin()
        counts = zope.component.getUtility(IStateCounts)
        self.assertEqual(
            {'ok': 1, 'unavailable': 1, 'unknown': 0,
             'temporary unavailable': 0, 'unsupported protocol': 0},
            counts.counts())
