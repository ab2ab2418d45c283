"""Schema evolution steps of gocept.lms (the ones not tested with the API)."""

import unittest

import transaction
import zope.component

import gocept.lms.generations.evolve2
import gocept.lms.generations.evolve5
import gocept.lms.generations.evolve7
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


class Evolve7Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_cuts_a_generation_6_schedule_into_shards(self):
        import BTrees.LLBTree
        import BTrees.Length
        import gocept.lms.merging
        import gocept.lms.schedule
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        urls = zope.component.getUtility(IURLProvider)
        a, b, c, d, gone = urls.add_multiple(
            ['http://a.example/', 'http://b.example/x',
             'http://b.example/y', 'mailto:d@d.example',
             'http://gone.example/'])
        T = 1_800_000_000
        gone_id = gone.id
        urls.remove(gone)
        # The layout of generation 6: one queue, set and entry tree.
        schedule = zope.component.getUtility(ISchedule)
        for name in ('shards', 'workers', '_shard_of'):
            delattr(schedule, name)
        schedule._recent = gocept.lms.merging.KeyQueue()
        schedule._recent.add(a.id, T)
        schedule._new = BTrees.LLBTree.LLTreeSet([d.id])
        schedule._new_count = BTrees.Length.Length(2)
        schedule._entries = BTrees.LLBTree.LLTreeSet()
        schedule._slots = gocept.lms.merging.Tally()
        schedule._stale = BTrees.LLBTree.LLTreeSet([gone_id])
        for key, when in ((b.id, T + 60), (c.id, T + 120), (gone_id, T)):
            schedule._entries.insert(gocept.lms.schedule._entry(when, key))
            schedule._slots.change(gocept.lms.schedule._slot(when), 1)
        transaction.commit()

        # The step runs in a connection of its own, as zope.generations
        # runs it at start.
        tm = transaction.TransactionManager()
        with tm:
            other = self.layer.db.open(tm).root()['Application'][
                site.__name__]
            self.assertTrue(
                gocept.lms.generations.evolve7.shard_schedule(other))
        transaction.begin()

        self.assertNotIn('_entries', schedule.__dict__)
        self.assertEqual(gocept.lms.schedule.SHARDS, len(schedule.shards))
        # both URLs of b.example are in one shard
        self.assertIs(schedule.shard(b.id), schedule.shard(c.id))
        self.assertEqual(
            gocept.lms.schedule.shard_of('http://b.example/'),
            schedule.shard(b.id).number)
        # the new ones first, then the due entries in time order; the
        # entry of the removed URL is dropped, and with it its stale mark
        self.assertEqual({a.id, d.id}, set(schedule.due(now=0)))
        self.assertEqual([b.id, c.id], schedule.due(now=T + 120)[2:])
        self.assertFalse(schedule.is_stale(gone_id))
        self.assertEqual(4, len(schedule))
        self.assertEqual(4, schedule.backlog(now=T + 120))
        until, keys = schedule.claim(T + 60, 10, 900)
        self.assertEqual({a.id, d.id, b.id}, set(keys))
        self.assertTrue(schedule.reschedule(b.id, until, T + 86400))
        # a second run changes nothing
        self.assertFalse(gocept.lms.generations.evolve7.shard_schedule(site))


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
