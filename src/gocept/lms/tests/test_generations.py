"""Schema evolution steps of gocept.lms (the ones not tested with the API)."""

import unittest

import transaction
import zope.component

import gocept.lms.generations.evolve2
import gocept.lms.tests
from gocept.lms.interfaces import ISchedule, IURLProvider


class Evolve2Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_adds_the_schedule_with_every_url_due(self):
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        urls = zope.component.getUtility(IURLProvider)
        a, b = urls.add_multiple(['http://a.example/', 'http://b.example/'])
        # a site from before the schedule existed
        sm = site.getSiteManager()
        sm.unregisterUtility(sm.getUtility(ISchedule), ISchedule)
        del sm['default']['schedule']
        self.assertIsNone(sm.queryUtility(ISchedule))

        self.assertTrue(gocept.lms.generations.evolve2.add_schedule(site))
        schedule = sm.getUtility(ISchedule)
        self.assertEqual(sorted([a.id, b.id]), sorted(schedule.due(now=1)))
        # a second run changes nothing
        self.assertFalse(gocept.lms.generations.evolve2.add_schedule(site))
