"""Generation 4: a site of the first data model moves to the second."""

import unittest

import BTrees.LLBTree
import BTrees.LOBTree
import BTrees.OLBTree
import transaction
import zope.component

import gocept.lms.client
import gocept.lms.generations.evolve4
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, INotifications
from gocept.lms.interfaces import ISchedule, IStateCounts, IURLProvider


T = 1_800_000_000


def make_v1(site, records, when, pending):
    """Give the site's utilities the layout of the first data model."""
    sm = site.getSiteManager()
    urls = sm.getUtility(IURLProvider)
    for name in ('_urls', '_index', '_collisions', '_info'):
        delattr(urls, name)
    urls._records = BTrees.LOBTree.LOBTree(records)
    urls._ids = BTrees.OLBTree.OLBTree(
        {record[0]: key for key, record in records.items()})
    schedule = sm.getUtility(ISchedule)
    for name in ('shards', 'workers', '_shard_of', '_new_count', '_slots',
                 '_stale'):
        delattr(schedule, name)
    schedule._queue = BTrees.LLBTree.LLTreeSet()
    schedule._when = BTrees.LLBTree.LLBTree(when)
    fred = sm.getUtility(IClientProvider)['fred']
    INotifications(fred).pending = BTrees.LLBTree.LLBTree(pending)


class Evolve4Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_urls_schedule_and_pending_move_to_the_second_model(self):
        site = gocept.lms.tests.site_setup(self.layer.getRootFolder())
        clients = zope.component.getUtility(IClientProvider)
        clients.add(gocept.lms.client.Client('fred'))
        urls = zope.component.getUtility(IURLProvider)
        # Subscriptions are kept as they are; make them with the new model
        # first, at the keys the old records use.
        a, b, c = urls.add_multiple(
            ['http://a.example/', 'http://b.example/', 'mailto:c@c.example'])
        clients['fred'].register_urls([a, b, c])
        history = (T - 100.5, 1, 'http', False)
        make_v1(site, {
            a.id: ('http://a.example/', 'ok', '200 OK', T - 10.0,
                   T - 1000.0, None),
            b.id: ('http://b.example/', 'temporary unavailable',
                   '503 Service Unavailable', T - 20.0, T - 20.0, history),
            c.id: ('mailto:c@c.example', 'unknown', 'unknown', None, None,
                   None),
        }, when={a.id: T + 86400, b.id: T + 3600, c.id: 0, 999: T},
            pending={b.id: 12345})

        transaction.commit()

        # The step runs in a connection of its own, on ghosts, as
        # zope.generations runs it at start.
        tm = transaction.TransactionManager()
        with tm:
            other = self.layer.db.open(tm).root()['Application'][
                site.__name__]
            gocept.lms.generations.evolve4.upgrade_model(other)
        transaction.begin()

        self.assertNotIn('_records', urls.__dict__)
        self.assertNotIn('_ids', urls.__dict__)
        b = urls.get_url('http://b.example/')
        self.assertEqual(
            ('temporary unavailable', '503 Service Unavailable', T - 20,
             history), (b.state, b.reason, b.last_check.timestamp(),
                        b.history))
        self.assertEqual(
            ['http://a.example/', 'http://b.example/', 'mailto:c@c.example'],
            sorted(u.url for u in clients['fred'].urls))
        self.assertEqual({'fred'}, b.clients)

        schedule = zope.component.getUtility(ISchedule)
        # the never checked URL is new; the entry of a URL that is gone
        # (999) is dropped
        self.assertEqual([c.id], schedule.due(now=0))
        self.assertEqual([c.id, b.id], schedule.due(now=T + 3600))
        self.assertEqual(3, len(schedule))
        self.assertEqual(2, schedule.backlog(now=T + 3600))

        pending = INotifications(clients['fred']).pending
        self.assertIsInstance(pending, gocept.lms.client.PendingChanges)
        self.assertEqual([(b.id, 12345)], pending.items())

        # the counts of generation 3 read the new records
        counts = zope.component.getUtility(IStateCounts)
        counts.recount(urls)
        self.assertEqual(1, counts['temporary unavailable'])

        # a second run changes nothing
        gocept.lms.generations.evolve4.upgrade_model(site)
        self.assertEqual(3, len(schedule))
        self.assertEqual('200 OK', urls.get_url('http://a.example/').reason)
