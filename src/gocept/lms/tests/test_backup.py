"""Backup, restore and pack as README.txt ("Backup, restore and pack")
tells an operator to do them, each once, with the real tools against real
servers on 127.0.0.1: bin/repozo and bin/zeopack for the ZEO server's
FileStorage, pg_dump, pg_restore and bin/zodbpack for PostgreSQL.

The data is what any ZODB database holds, objects under the root; the
database is opened with the configuration the LMS processes use
(`processes.zodb_section`).
"""

import os
import subprocess
import tempfile
import time
import unittest

import BTrees.OOBTree
import transaction
import ZODB.config
import ZODB.FileStorage

import gocept.lms.pgserver
import gocept.lms.tests
from gocept.lms.tests import processes


def open_db(storage):
    return ZODB.config.databaseFromString(
        processes.zodb_section(storage))


def store(db, name, count):
    """A BTree of `count` URLs under root[name]."""
    connection = db.open()
    tree = connection.root()[name] = BTrees.OOBTree.OOBTree()
    for number in range(count):
        tree['http://127.0.1.1/%s/%d' % (name, number)] = number
    transaction.commit()
    connection.close()


def contents(db):
    """{name: entries} of what `store` left under the root."""
    connection = db.open()
    try:
        return {name: len(tree) for name, tree in connection.root().items()}
    finally:
        connection.close()


def leave_garbage(db):
    """Store a tree of 5,000 URLs, then drop it for one of 10; close
    `db`."""
    store(db, 'old', 5000)
    connection = db.open()
    del connection.root()['old']
    transaction.commit()
    connection.close()
    store(db, 'kept', 10)
    db.close()


def run(*command, **kw):
    result = subprocess.run(command, capture_output=True, text=True, **kw)
    if result.returncode:
        raise AssertionError('%s failed (%d): %s' % (
            ' '.join(command), result.returncode, result.stderr))
    return result


class ZEOBackupTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)
        self.data_fs = os.path.join(self.tmp, 'Data.fs')

    def test_repozo_backs_up_a_running_server_and_restores(self):
        backups = os.path.join(self.tmp, 'backups')
        os.mkdir(backups)
        repozo = os.path.join(processes.BIN, 'repozo')
        db = open_db(self.zeo)
        store(db, 'monday', 500)
        # a full backup first, while the server serves the database
        run(repozo, '-B', '-F', '-z', '-r', backups, '-f', self.data_fs)
        store(db, 'tuesday', 300)
        # repozo names its files by the second they were made in
        time.sleep(1.1)
        # then an incremental one: only what was added since
        run(repozo, '-B', '-z', '-r', backups, '-f', self.data_fs)
        db.close()
        self.assertEqual(['deltafsz', 'fsz'], sorted(
            name.rsplit('.', 1)[1] for name in os.listdir(backups)
            if name.endswith(('.fsz', '.deltafsz'))))
        restored = os.path.join(self.tmp, 'restored', 'Data.fs')
        os.mkdir(os.path.dirname(restored))
        run(repozo, '-R', '-r', backups, '-o', restored)
        db = ZODB.DB(ZODB.FileStorage.FileStorage(restored, read_only=True))
        try:
            self.assertEqual({'monday': 500, 'tuesday': 300}, contents(db))
        finally:
            db.close()

    def test_zeopack_removes_what_nothing_refers_to(self):
        leave_garbage(open_db(self.zeo))
        before = os.path.getsize(self.data_fs)
        run(os.path.join(processes.BIN, 'zeopack'), '-d', '0',
            '127.0.0.1:%d' % self.zeo.port)
        self.assertLess(os.path.getsize(self.data_fs), before / 10)
        db = open_db(self.zeo)
        try:
            self.assertEqual({'kept': 10}, contents(db))
        finally:
            db.close()


class PostgreSQLBackupTest(unittest.TestCase):

    layer = gocept.lms.tests.postgresql_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.database = processes.database(self.layer.server)

    def program(self, name):
        return os.path.join(gocept.lms.pgserver.bin_directory(), name)

    def objects(self):
        return self.database.query('SELECT count(*) FROM object_state')[0][0]

    def test_pg_dump_backs_up_a_running_database_and_pg_restore_restores(
            self):
        db = open_db(self.database)
        store(db, 'monday', 500)
        dump = os.path.join(self.tmp, 'lms.dump')
        # while the LMS's connection is open
        run(self.program('pg_dump'), '--format=custom', '--file', dump,
            '--dbname', self.database.dsn())
        store(db, 'tuesday', 300)  # after the backup: not in it
        db.close()
        restored = processes.database(self.layer.server)
        run(self.program('pg_restore'), '--no-owner', '--dbname',
            restored.dsn(), dump)
        db = open_db(restored)
        try:
            self.assertEqual({'monday': 500}, contents(db))
        finally:
            db.close()

    def test_zodbpack_removes_what_nothing_refers_to(self):
        leave_garbage(open_db(self.database))
        before = self.objects()
        conf = os.path.join(self.tmp, 'relstorage.conf')
        with open(conf, 'w') as f:
            f.write(processes.relstorage_section(self.database))
        run(os.path.join(processes.BIN, 'zodbpack'), '-d', '0', conf)
        after = self.objects()
        self.assertLess(after, before)
        # the root and the kept tree (a BTree of 10 is one object)
        self.assertEqual(2, after)
        db = open_db(self.database)
        try:
            self.assertEqual({'kept': 10}, contents(db))
        finally:
            db.close()
