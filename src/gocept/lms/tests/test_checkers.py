"""Two bin/checker processes share the work of one database.

A real ZEO server, the checker tests' HTTP server on many loopback
addresses (each a host; it logs the arrival of every request per address),
and two bin/checker daemons. The schedule's shards are split between them
(shardlease.py) before the URLs are registered. What is asserted are
orders and counts from the server's log, never how long anything took.
"""

import collections
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


RATE = 2.0               # requests per second per host
SHARD_LEASE = 3.0        # seconds
URL_LEASE = 0.2          # minutes (check-lease): 12 s
SETTLE = 180             # seconds at most for anything to happen


class TwoCheckers(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    hosts = 30
    per_host = 8

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        self.zeo = processes.ZEOServer(self.tmp).start()
        self.addCleanup(self.zeo.stop)
        self.addresses = ['127.0.1.%d' % n for n in range(1, self.hosts + 1)]
        self.web = processes.WebServerThread(self.addresses)
        self.addCleanup(self.web.stop)
        self.conf = processes.write_zope_conf(self.tmp, self.zeo, {
            'secret-key-file': self.layer.config['secret-key-file'],
            'check-stats-file': '',
            'check-poll': '0.2',
            'check-claim-size': '20',
            'check-lease': str(URL_LEASE),
            'check-shard-lease': str(SHARD_LEASE),
            'checker-allow-cidrs': '127.0.1.0/24',
            'checker-per-host-rate': str(RATE)})
        self.db = ZEO.DB(self.zeo.address)
        self.addCleanup(self.db.close)
        zope.event.notify(zope.processlifetime.DatabaseOpened(self.db))
        self.addCleanup(zope.component.hooks.setSite, None)
        tm, site = self.open_site()
        zope.component.getUtility(IClientProvider).add(
            gocept.lms.client.Client('fred'))
        tm.commit()
        self.checkers = [self.start_checker(), self.start_checker()]
        self.wait_for(self.balanced, 'the checkers never split the shards')

    def open_site(self):
        return processes.open_site(self.db, self.addCleanup)

    def start_checker(self):
        checker = subprocess.Popen(
            [os.path.join(processes.BIN, 'checker'), '-C', self.conf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: checker.poll() is None and (
            checker.terminate(), checker.wait(60)))
        return checker

    def wait_for(self, condition, message):
        guard = time.monotonic() + SETTLE
        while not condition():
            for checker in self.checkers:
                self.assertIsNone(checker.poll(), 'a checker ended')
            self.assertLess(time.monotonic(), guard, message)
            time.sleep(0.2)

    def schedule(self):
        tm, site = self.open_site()
        return zope.component.getUtility(ISchedule)

    def owners(self):
        return collections.Counter(
            shard.owner for shard in self.schedule().shards)

    def balanced(self):
        counts = self.owners()
        return None not in counts and sorted(counts.values()) == [32, 32]

    def register(self):
        tm, site = self.open_site()
        urls = zope.component.getUtility(IURLProvider)
        self.urls = [self.web.url('/ok?%d' % n, host)
                     for n in range(self.per_host) for host in self.addresses]
        zope.component.getUtility(IClientProvider)['fred'].register_urls(
            urls.add_multiple(self.urls))
        tm.commit()

    def checked(self):
        tm, site = self.open_site()
        urls = zope.component.getUtility(IURLProvider)
        return sum(urls.get_url(url).last_check is not None
                   for url in self.urls)

    def requests(self):
        """Arrival times by host and by URL, from the server's log."""
        by_host, by_url = collections.defaultdict(list), \
            collections.defaultdict(list)
        for when, host, method, target, agent in list(self.web.server.log):
            by_host[host].append(when)
            by_url[host, target].append(when)
        return by_host, by_url

    def assert_polite(self, by_host):
        interval = 1 / RATE
        for host, times in by_host.items():
            times.sort()
            gaps = [b - a for a, b in zip(times, times[1:])]
            # A few milliseconds for the way from the checker's clock to
            # the server's.
            self.assertGreater(min(gaps, default=interval), interval - 0.01,
                               'host %s served two requests too close' % host)

    def test_two_checkers_share_the_hosts_politely(self):
        self.register()
        self.wait_for(lambda: self.checked() == len(self.urls),
                      'not every URL was checked')
        by_host, by_url = self.requests()
        self.assert_polite(by_host)
        # Every URL was checked once: by one of the two.
        self.assertEqual(len(self.urls), len(by_url))
        self.assertEqual({1}, {len(times) for times in by_url.values()})
        # Both did their part, and publish their figures (every renewal).
        self.wait_for(lambda: sum(self.published()) == len(self.urls),
                      'the figures do not add up')
        self.assertEqual(2, len(self.published()))
        self.assertGreater(min(self.published()), 0)

    def published(self):
        return [sum(w.stats.get('checks', {}).values())
                for w in self.schedule().workers.values()]

    def test_a_checker_killed_mid_round_loses_nothing(self):
        self.per_host = 12
        self.register()
        self.wait_for(lambda: self.checked() >= len(self.urls) // 4,
                      'checks never started')
        victim, survivor = self.checkers
        writer = processes.child_pids(victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(60)
        self.checkers = [survivor]
        # The survivor takes the shards over and, when the dead one's URL
        # leases end, checks what it had claimed.
        self.wait_for(lambda: set(self.owners()) == {self.survivor_name()},
                      'the shards were not taken over')
        self.wait_for(lambda: self.checked() == len(self.urls),
                      'not every URL was checked')
        for pid in writer:
            self.assertFalse(processes.alive(pid), 'the writer outlived it')
        by_host, by_url = self.requests()
        self.assert_polite(by_host)
        self.assertEqual(len(self.urls), len(by_url))
        # A URL is checked twice only if the dead checker had it in hand:
        # then not before its lease ran out.
        for times in by_url.values():
            times.sort()
            for a, b in zip(times, times[1:]):
                self.assertGreaterEqual(b - a, URL_LEASE * 60 - 1)
        # One entry per URL, nothing claimed left behind for ever.
        schedule = self.schedule()
        self.assertEqual(len(self.urls), len(schedule))

    def survivor_name(self):
        names = [name for name, worker in self.schedule().workers.items()
                 if worker.alive(time.time())]
        return names[0] if len(names) == 1 else None
