"""prefetch.py asks the storage for many objects at once."""

import os
import random
import shutil
import tempfile
import time
import unittest

import BTrees.LLBTree
import transaction
import ZODB
import ZODB.FileStorage
import ZODB.MappingStorage

import gocept.lms.app
import gocept.lms.prefetch
import gocept.lms.tests
from gocept.lms.interfaces import ISchedule, IURLProvider


class RecordingStorage(ZODB.MappingStorage.MappingStorage):
    """Remembers each prefetch request, as ZEO would answer it at once."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def prefetch(self, oids, tid):
        self.requests.append(set(oids))


class Small(BTrees.LLBTree.LLTreeSet):
    max_leaf_size = 4
    max_internal_size = 4


class PrefetchTreesTest(unittest.TestCase):

    def setUp(self):
        self.storage = RecordingStorage()
        self.db = ZODB.DB(self.storage)
        with self.db.transaction() as conn:
            conn.root.a, conn.root.b = Small(), Small()
            conn.root.a.update(range(0, 200, 2))
            conn.root.b.update(range(1, 200, 2))
        self.conn = self.db.open(transaction.TransactionManager())
        self.conn.cacheMinimize()
        self.storage.requests.clear()

    def tearDown(self):
        self.conn.close()
        self.db.close()

    def loaded_by_lookups(self, lookups):
        """The oids of the objects that looking up the keys loads: the
        nodes and buckets on their way, and nothing else."""
        self.conn.cacheMinimize()
        for tree, keys in lookups:
            for key in keys:
                tree.has_key(key)
        return {oid for oid, ob in self.conn._cache.items()
                if ob._p_changed is not None} - {self.conn.root()._p_oid}

    def test_two_trees_share_one_request_per_level(self):
        root = self.conn.root
        wanted = [(root.a, [10, 150]), (root.b, [11])]
        gocept.lms.prefetch.prefetch_trees(wanted)
        requests = self.storage.requests
        # root, inner nodes on three levels, buckets: five levels, each
        # asked for in one request for both trees
        self.assertEqual(5, len(requests))
        self.assertEqual(self.loaded_by_lookups(wanted),
                         set().union(*requests))
        a_oids = self.loaded_by_lookups(wanted[:1])
        for request in requests:
            self.assertTrue(request & a_oids and request - a_oids)

    def test_one_tree_at_a_time_takes_a_request_per_tree_and_level(self):
        root = self.conn.root
        gocept.lms.prefetch.prefetch_keys(root.a, [10, 150])
        gocept.lms.prefetch.prefetch_keys(root.b, [11])
        self.assertEqual(10, len(self.storage.requests))

    def test_nothing_to_fetch(self):
        gocept.lms.prefetch.prefetch_trees([(self.conn.root.a, [])])
        gocept.lms.prefetch.prefetch_trees([(Small(), [1])])
        self.assertEqual([], self.storage.requests)

    def test_a_whole_tree_takes_one_request_per_level(self):
        root = self.conn.root
        gocept.lms.prefetch.prefetch_whole(root.a)
        requests = self.storage.requests
        self.assertEqual(5, len(requests))
        self.assertEqual(
            self.loaded_by_lookups([(root.a, range(0, 200, 2))]),
            set().union(*requests))


class RecordingFileStorage(ZODB.FileStorage.FileStorage):
    """Remembers which objects were asked for together (`prefetch`) and
    which were loaded one by one afterwards."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.prefetched, self.loaded = set(), []

    def prefetch(self, oids, tid):
        self.prefetched.update(oids)

    def loadBefore(self, oid, tid):
        self.loaded.append(oid)
        return super().loadBefore(oid, tid)


class CheckerReadsTest(unittest.TestCase):
    """What the checker's database process reads for a claim and for a
    batch of results comes from the storage together, not one bucket after
    another: once check times have drifted apart, the keys of a claim are
    spread over all of the URL trees and the schedule."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.storage = RecordingFileStorage(
            os.path.join(self.tmp, 'Data.fs'))
        self.db = ZODB.DB(self.storage)
        self.db.setCacheSize(100000)
        self.tm = transaction.TransactionManager()
        self.conn = self.db.open(self.tm)
        root = self.conn.root()
        root['lms'] = gocept.lms.app.LMS()
        urls = self.utility(IURLProvider)
        # every URL on a host of its own: spread over all shards
        urls.add_multiple(['http://h%d.example.com/%d' % (i, i)
                           for i in range(3000)])
        self.tm.commit()
        self.schedule = self.utility(ISchedule)
        self.urls = urls

    def tearDown(self):
        self.tm.abort()
        self.conn.close()
        self.db.close()
        shutil.rmtree(self.tmp)

    def utility(self, iface):
        return self.conn.root()['lms'].getSiteManager().getUtility(iface)

    def loaded_one_by_one(self, call):
        """The oids `call()` loaded that no prefetch asked for first."""
        self.conn.cacheMinimize()
        self.storage.prefetched.clear()
        del self.storage.loaded[:]
        call()
        return [oid for oid in self.storage.loaded
                if oid not in self.storage.prefetched]

    def test_a_claim_of_scattered_keys(self):
        now = time.time()
        until, placed = self.schedule.claim_placed(now, 3000, 900)
        # the shard numbers come with the claim
        self.assertEqual(
            [self.schedule.shard(key).number for key, number in placed],
            [number for key, number in placed])
        self.tm.commit()
        keys = random.Random(1).sample([key for key, _ in placed], 500)
        loaded = self.loaded_one_by_one(
            lambda: list(self.urls.check_items(keys)))
        # the trees' roots and top nodes at most, never their buckets
        self.assertLess(len(loaded), 10, loaded)

    def test_a_claim_from_every_shard(self):
        # The URLs wait in the queues of new URLs of all 64 shards, as in
        # a checker's first claim or after the web processes added some.
        # Its shards and their queues come together, not one by one.
        now = time.time()
        claims = []
        loaded = self.loaded_one_by_one(lambda: claims.append(
            self.schedule.claim_placed(now, 640, 900)))
        until, placed = claims[0]
        self.assertEqual(640, len(placed))
        self.assertEqual(64, len({number for key, number in placed}))
        self.assertLess(len(loaded), 10, loaded)
        # and so do the first buckets of the due entries
        self.tm.commit()
        loaded = self.loaded_one_by_one(
            lambda: self.schedule.claim_placed(until + 1, 640, 900))
        self.assertLess(len(loaded), 10, loaded)

    def reschedule_scattered(self, seed, placed):
        """reschedule_many() 500 of 3000 claimed keys drawn at random;
        `placed`: whether the shard numbers come with them."""
        now = time.time()
        until, claimed = self.schedule.claim_placed(now, 3000, 900)
        self.tm.commit()
        sample = random.Random(seed).sample(claimed, 500)
        moves = [(key, until, now + 86400 + i, number if placed else None)
                 for i, (key, number) in enumerate(sample)]
        moved = []
        loaded = self.loaded_one_by_one(
            lambda: moved.append(self.schedule.reschedule_many(moves)))
        self.assertEqual([500], moved)
        # each moved to its next check
        self.assertEqual(
            set(self.schedule.due(now + 86400 + 500))
            - set(self.schedule.due(now + 86400 - 1)),
            {key for key, _ in sample})
        return loaded

    def test_results_of_scattered_keys(self):
        loaded = self.reschedule_scattered(2, placed=True)
        self.assertLess(len(loaded), 10, loaded)

    def test_results_of_scattered_keys_without_their_shards(self):
        loaded = self.reschedule_scattered(3, placed=False)
        self.assertLess(len(loaded), 10, loaded)
