"""prefetch.py asks the storage for many objects at once."""

import unittest

import BTrees.LLBTree
import transaction
import ZODB
import ZODB.MappingStorage

import gocept.lms.prefetch


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
