"""Schema evolution steps of gocept.lms (the ones not tested with the API)."""

import unittest

import transaction
import zope.component

import gocept.lms.generations.evolve2
import gocept.lms.generations.evolve5
import gocept.lms.generations.evolve8
import gocept.lms.tests
from gocept.lms.client import Client
from gocept.lms.interfaces import (
    IChangeJournal, IClientFigures, IClientProvider, INotifications,
    ISchedule, ISynchronization, IURLProvider)


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


class Evolve5Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_adds_the_change_journal(self):
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        urls = zope.component.getUtility(IURLProvider)
        a = urls.add('http://a.example/')
        # a site from before the journal existed: state changes go nowhere
        sm = site.getSiteManager()
        sm.unregisterUtility(sm.getUtility(IChangeJournal), IChangeJournal)
        del sm['default']['changes']
        a.update_check('ok', None, '200 OK')

        self.assertTrue(gocept.lms.generations.evolve5.add_journal(site))
        journal = sm.getUtility(IChangeJournal)
        self.assertEqual(0, len(journal))
        a.update_check('unavailable', None, '404 Not Found')
        self.assertEqual([(a.id,)], [keys for when, keys in journal.pending()])
        # a second run changes nothing
        self.assertFalse(gocept.lms.generations.evolve5.add_journal(site))
        self.assertIs(journal, sm.getUtility(IChangeJournal))


class Evolve8Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_copies_every_clients_figures(self):
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        sm = site.getSiteManager()
        clients = sm.getUtility(IClientProvider)
        clients.add(Client('wilma'))
        # a site from before the copy existed, whose clients have figures
        sm.unregisterUtility(sm.getUtility(IClientFigures), IClientFigures)
        del sm['default']['client-figures']
        INotifications(clients['wilma']).failed = 3
        ISynchronization(clients['wilma']).failures = 2

        self.assertTrue(
            gocept.lms.generations.evolve8.add_client_figures(site))
        figures = sm.getUtility(IClientFigures).figures()
        self.assertEqual(sorted(clients.keys()), sorted(figures))
        self.assertEqual(
            {'notify': {'enabled': True, 'failed': 3, 'last': None},
             'sync': {'failures': 2, 'last': None}}, figures['wilma'])
        # a second run changes nothing
        self.assertFalse(
            gocept.lms.generations.evolve8.add_client_figures(site))
