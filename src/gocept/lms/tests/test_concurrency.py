"""The whole LMS under concurrent load: the short form of
benchmarks/concurrency.py (the machinery and what it measures:
gocept.lms.tests.concurrency).

Real processes (the database: ZEO, or PostgreSQL; two web servers, two
checkers, notifier, bin/sync --force in a loop) and 20 clients registering and unregistering URLs for a few seconds.
No figure depends on the speed of the machine: settling is waited for with
a generous timeout, then the outcome is compared.
"""

import shutil
import tempfile
import unittest

import gocept.lms.tests
from gocept.lms.tests import concurrency


# Modest, for a machine with two cores: most calls are of 50 URLs, two of
# 5,000.
LOAD = concurrency.Load(
    clients=20,
    duration=12,
    large_share=0.05,
    large_calls=2,
    shared_pool=2000,
    think=0.2,
    sync_pause=0.5,
    settle_timeout=240,
    stall=30,
    check_lease=0.5,
    call_timeout=240,
)


class ConcurrencyTest(unittest.TestCase):

    def run_load(self, tmp):
        return concurrency.Run(LOAD, tmp)()

    def test_clients_see_no_errors_and_get_every_state(self):
        tmp = tempfile.mkdtemp(prefix='gocept.lms-concurrency-')
        report = self.run_load(tmp)
        table = report.table()
        wanted = {name: want for name, (got, want)
                  in report.figures().items()}
        got = {name: got for name, (got, want)
               in report.figures().items()}
        self.assertGreater(sum(report.calls.values()), 0, table)
        # All figures at once, so that a failure shows every one that is
        # off; the table has the details (and where the logs are).
        self.assertEqual(wanted, got, '\n' + table)
        shutil.rmtree(tmp, ignore_errors=True)



class ConcurrencyOnPostgreSQLTest(ConcurrencyTest):

    layer = gocept.lms.tests.postgresql_layer

    def run_load(self, tmp):
        return concurrency.Run(LOAD, tmp, storage='postgresql',
                               postgresql=self.layer.server)()
