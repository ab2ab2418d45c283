"""bin/checker stops on SIGINT and SIGTERM without waiting for its checks.

A real ZEO server, a local web server on 127.0.1.1 whose `/hang` pages
never answer, and bin/checker as a process. Stopped while its checks of
`/hang` are in flight, the checker gives them up: it ends long before
those checks could end (they would wait for an hour), writes what it had
checked and puts the claimed URLs it did not check back, due at once.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import ZEO
import zope.component.hooks
import zope.event
import zope.processlifetime

import gocept.lms.client
import gocept.lms.tests
from gocept.lms.interfaces import IClientProvider, ISchedule, IURLProvider
from gocept.lms.tests import processes


HANGING = 6
GOOD = 4


class CheckerStopTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)
        self.web = processes.WebServerThread(['127.0.1.1'])
        self.addCleanup(self.web.stop)
        self.conf = processes.write_zope_conf(self.tmp, self.zeo, {
            'secret-key-file': self.layer.config['secret-key-file'],
            'check-stats-file': os.path.join(self.tmp, 'stats.json'),
            'checker-allow-cidrs': '127.0.1.0/24',
            'checker-per-host-rate': '0',
            # the hanging checks fill every slot once the good ones are done
            'checker-concurrency': str(HANGING),
            'checker-read-timeout': '3600',
            'checker-total-timeout': '3600'})
        self.db = ZEO.DB(self.zeo.address)
        self.addCleanup(self.db.close)
        zope.event.notify(zope.processlifetime.DatabaseOpened(self.db))
        self.addCleanup(zope.component.hooks.setSite, None)
        tm, site = self.open_site()
        client = gocept.lms.client.Client('fred')
        zope.component.getUtility(IClientProvider).add(client)
        urls = zope.component.getUtility(IURLProvider)
        self.good = [self.web.url('/ok?%d' % i) for i in range(GOOD)]
        self.hanging = [self.web.url('/hang?%d' % i) for i in range(HANGING)]
        client.register_urls(urls.add_multiple(self.good + self.hanging))
        tm.commit()

    def open_site(self):
        return processes.open_site(self.db, self.addCleanup)

    def busy_with_hanging_checks(self):
        """Whether the checker's figures (checkerstats.py) say that the
        good URLs are checked and every slot holds a hanging check."""
        try:
            with open(os.path.join(self.tmp, 'stats.json')) as f:
                figures = json.load(f)
        except (OSError, ValueError):
            return False
        return (figures['checks'].get('ok') == GOOD
                and figures['in_flight'] == HANGING)

    def stop_checker(self, signum, *args):
        checker = subprocess.Popen(
            [os.path.join(processes.BIN, 'checker'), '-C', self.conf] +
            list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.addCleanup(lambda: checker.poll() is None and checker.kill())
        # Wait until every slot holds a check that will not end by itself.
        guard = time.monotonic() + 60
        while not self.busy_with_hanging_checks():
            if checker.poll() is not None:
                self.fail('the checker ended: ' + checker.stdout.read())
            self.assertLess(time.monotonic(), guard, 'checks never started')
            time.sleep(0.05)
        checker.send_signal(signum)
        # The hanging checks would take an hour: ending at all shows that
        # the checker did not wait for them.
        output, _ = checker.communicate(timeout=120)
        return checker.returncode, output

    def assert_written_and_put_back(self, output):
        self.assertIn('stopping: writing what was checked', output)
        self.assertIn('%d claimed URLs not checked: due again' % HANGING,
                      output)
        tm, site = self.open_site()
        urls = zope.component.getUtility(IURLProvider)
        for url in self.good:
            self.assertEqual('ok', urls.get_url(url).state)
        due = zope.component.getUtility(ISchedule).due(now=time.time())
        self.assertEqual(
            sorted(urls.get_url(url).id for url in self.hanging),
            sorted(due))

    def test_sigint_stops_checker_once(self):
        status, output = self.stop_checker(signal.SIGINT, '--once')
        self.assertEqual(0, status, output)
        self.assert_written_and_put_back(output)

    def test_sigterm_stops_the_daemon(self):
        status, output = self.stop_checker(signal.SIGTERM)
        self.assertEqual(0, status, output)
        self.assert_written_and_put_back(output)
