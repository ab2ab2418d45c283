"""The ring of recent state changes (recent.py)."""

import os
import shutil
import tempfile
import unittest

import transaction
import ZODB
import ZODB.FileStorage
import zope.component

import gocept.lms.recent
import gocept.lms.tests
from gocept.lms.interfaces import IRecentChanges, IURLProvider


class RecentChangesTest(unittest.TestCase):

    def test_keeps_the_newest_changes_newest_first(self):
        recent = gocept.lms.recent.RecentChanges()
        recent.note([(1, 'unknown', 'ok'), (2, 'unknown', 'ok')], when=10)
        recent.note([(1, 'ok', 'unavailable')], when=20)
        self.assertEqual([(20, 1, 'ok', 'unavailable'),
                          (10, 2, 'unknown', 'ok')], recent.latest())

    def test_is_bounded(self):
        recent = gocept.lms.recent.RecentChanges()
        limit = gocept.lms.recent.LIMIT
        recent.note([(key, 'ok', 'unavailable') for key in range(limit)],
                    when=1)
        recent.note([(1000, 'ok', 'unavailable')], when=2)
        latest = recent.latest()
        self.assertEqual(limit, len(latest))
        self.assertEqual((2, 1000), latest[0][:2])


class ConcurrentNotesTest(unittest.TestCase):
    """Two checker transactions that change states at once both write the
    ring: they merge instead of conflicting."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        # A FileStorage resolves conflicts as the ZEO server does.
        self.db = ZODB.DB(ZODB.FileStorage.FileStorage(
            os.path.join(self.tmp, 'Data.fs')))
        tm = transaction.TransactionManager()
        root = self.db.open(tm).root()
        root['recent'] = recent = gocept.lms.recent.RecentChanges()
        recent.note([(key, 'ok', 'unavailable')
                     for key in range(gocept.lms.recent.LIMIT)], when=1)
        tm.commit()

    def tearDown(self):
        self.db.close()
        shutil.rmtree(self.tmp)

    def open(self):
        tm = transaction.TransactionManager()
        return tm, self.db.open(tm).root()['recent']

    def test_two_writers_merge_and_keep_the_newest(self):
        (tm_a, a), (tm_b, b) = self.open(), self.open()
        a.note([(100, 'ok', 'unavailable')], when=5)
        b.note([(200, 'unavailable', 'ok')], when=6)
        tm_a.commit()
        tm_b.commit()  # no ConflictError
        tm, merged = self.open()
        latest = merged.latest()
        self.assertEqual(gocept.lms.recent.LIMIT, len(latest))
        self.assertEqual([(6, 200, 'unavailable', 'ok'),
                          (5, 100, 'ok', 'unavailable')], latest[:2])


class SubscriberTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_state_changes_are_noted(self):
        gocept.lms.tests.site_setup(self.layer.getRootFolder())
        url = zope.component.getUtility(IURLProvider).add('http://a.example/')
        url.update_check('ok', None, '200 OK')
        url.update_check('ok', None, '200 OK, again')  # no state change
        url.update_check('unavailable', None, '404')
        recent = zope.component.getUtility(IRecentChanges)
        # One entry per URL: its latest change.
        self.assertEqual([(url.id, 'ok', 'unavailable')],
                         [change[1:] for change in recent.latest()])
