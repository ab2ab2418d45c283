"""The checker's database process (checkerdb.start_process) closes its
database when it ends normally, and says so with exit status 0."""

import multiprocessing
import os
import shutil
import tempfile
import unittest

import transaction
import ZODB
import ZODB.FileStorage
import ZODB.fsIndex

import gocept.lms.checkerdb


def open_file_storage(path, **kw):
    """An `open_database` for start_process: a FileStorage at `path`,
    with one change not yet in its index file."""
    db = ZODB.DB(ZODB.FileStorage.FileStorage(path))
    with transaction.manager:
        db.open().root()['touched'] = True
    return db


def database_process(path):
    gocept.lms.checkerdb.start_process(open_file_storage, path, True)
    # returning ends the process as the executor's worker ends


class DatabaseProcessEndTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_the_database_is_closed_on_the_way_out(self):
        path = os.path.join(self.tmp, 'Data.fs')
        process = multiprocessing.get_context('spawn').Process(
            target=database_process, args=(path,))
        process.start()
        process.join(60)
        self.assertEqual(0, process.exitcode)
        # FileStorage brings its index file up to date when it is closed:
        # then it covers the whole file, with the last change.
        saved = ZODB.fsIndex.fsIndex.load(path + '.index')
        self.assertEqual(os.path.getsize(path), saved['pos'])
