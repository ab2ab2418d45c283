"""Faults under load, on PostgreSQL: the machinery of the concurrency test
(gocept.lms.tests.concurrency: two web servers, two checkers, the
notifier, bin/sync in a loop, 20 clients) while

* PostgreSQL is killed with SIGKILL, postmaster and sessions, and started
  again: every process reconnects by itself, none dies, no client sees an
  error, no registration a client was told of is lost and none is
  half-written (what the clients were told against what the LMS answers,
  URL by URL);
* one of the two checkers is killed with SIGKILL (and its database
  process with it): the run starts it again, as supervisord would, and
  the URLs it had claimed are checked after their lease.
"""

import shutil
import tempfile
import unittest

from gocept.lms.tests import concurrency
from gocept.lms.tests import processes
from gocept.lms.tests.test_concurrency import LOAD


class FaultsOnPostgreSQLTest(unittest.TestCase):

    def test_processes_ride_out_a_killed_database_and_a_killed_checker(self):
        tmp = tempfile.mkdtemp(prefix='gocept.lms-faults-')
        # a server of its own: this test kills it
        server = processes.postgresql(tmp)
        self.addCleanup(server.stop)
        first = server.pid()
        run = concurrency.Run(
            LOAD, tmp, storage='postgresql', postgresql=server,
            faults=[(3, concurrency.kill_postgresql),
                    (7, concurrency.kill_checker)])
        report = run()
        table = report.table()
        # The database was really killed: another postmaster serves it.
        self.assertNotIn(server.pid(), (None, first))
        # The one death is the checker's we killed.
        self.assertEqual([('checker-1', -9)],
                         [(name, status) for name, status, when
                          in report.deaths], table)
        figures = report.figures()
        figures.pop('process deaths')
        self.assertEqual({name: wanted for name, (got, wanted)
                          in figures.items()},
                         {name: got for name, (got, wanted)
                          in figures.items()}, '\n' + table)
        # The processes that met the outage said so, and that it ended.
        logs = ''.join(concurrency.read_log('%s/%s.log' % (tmp, name)) or ''
                       for name in concurrency.SERVICES)
        self.assertIn('the database is back after', logs)
        shutil.rmtree(tmp, ignore_errors=True)
