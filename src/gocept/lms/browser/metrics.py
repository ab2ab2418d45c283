"""Monitoring views: figures for Prometheus (`@@metrics`) and munin.

Every view here answers from figures that are cheap to read: the per-state
counters (`statecounts.py`), the length of the schedule's due range, one
small record per client, and the file the checker process publishes
(`checkerstats`). None reads all URL records, so a scrape costs the same
with a thousand URLs as with a million.

`metrics.txt` is the operator's guide to the figures.
"""

import collections
import time
import types

import zope.security.proxy

import gocept.lms.checkerstats
import gocept.lms.conflicts
import gocept.lms.publication
import gocept.lms.settings
from gocept.lms.clientfigures import NOTIFY, SYNC
from gocept.lms.interfaces import (
    IChangeJournal, IClientFigures, IClientProvider, ISchedule, IStateCounts,
    IURLProvider)
from gocept.lms.prometheus import Exposition


class Figures:
    """The figures of one LMS site, read once per request."""

    def __init__(self, site, now=None):
        # The views are protected by their own permission; reading the
        # utilities behind the site needs no further checks.
        site = zope.security.proxy.removeSecurityProxy(site)
        self.sm = site.getSiteManager()
        self.now = time.time() if now is None else now
        self.settings = gocept.lms.settings.get()

    def backlog(self):
        schedule = self.sm.queryUtility(ISchedule)
        return 0 if schedule is None else schedule.backlog(self.now)

    def checker(self):
        """The checker's published figures, or None; `up` says whether
        they are fresh."""
        data = gocept.lms.checkerstats.read(self.settings.check_stats_file)
        if data is None:
            return None
        age = max(0.0, self.now - data.get('updated', 0))
        data['age'] = age
        data['up'] = age <= gocept.lms.checkerstats.STALE_AFTER
        return data

    def workers(self):
        """The checkers known to the schedule (shardlease.Worker)."""
        schedule = self.sm.queryUtility(ISchedule)
        return [] if schedule is None else list(schedule.workers.values())

    def worker_shards(self, workers):
        owners = collections.Counter(
            shard.owner for shard in self.sm.getUtility(ISchedule).shards)
        return [(w, owners[w.name]) for w in workers]

    def in_flight(self):
        data = self.checker()
        # A checker that stopped publishing has nothing in flight; its
        # last figure would be a guess.
        return data['in_flight'] if data and data['up'] else 0


def _since(now, when):
    return None if when is None else max(0.0, now - when.timestamp())


class Metrics:
    """`@@metrics`: everything, in the Prometheus text format 0.0.4."""

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self):
        figures = Figures(self.context)
        out = Exposition()
        self.site_figures(figures, out)
        self.client_figures(figures, out)
        self.checker_figures(figures, out)
        self.worker_figures(figures, out)
        self.conflict_figures(figures, out)
        self.request.response.setHeader(
            'Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
        self.request.response.setHeader('Cache-Control', 'no-store')
        return out.text()

    def site_figures(self, figures, out):
        sm = figures.sm
        urls = sm.queryUtility(IURLProvider)
        clients = sm.queryUtility(IClientProvider)
        out.family('lms_urls', 'gauge', 'URLs watched (all states).',
                   [((), len(urls) if urls is not None else 0)])
        counts = sm.queryUtility(IStateCounts)
        if counts is not None:
            out.family(
                'lms_urls_by_state', 'gauge', 'URLs in each state.',
                [((('state', state),), count)
                 for state, count in sorted(counts.counts().items())])
        out.family('lms_clients', 'gauge', 'Registered clients.',
                   [((), len(clients) if clients is not None else 0)])
        out.family('lms_check_backlog', 'gauge',
                   'URLs due for a check now (the munin queue size).',
                   [((), figures.backlog())])
        journal = sm.queryUtility(IChangeJournal)
        out.family('lms_changes_waiting', 'gauge',
                   'State changes the notifier has not handed to the '
                   'clients yet.',
                   [((), len(journal) if journal is not None else 0)])

    def client_figures(self, figures, out):
        # One BTree holds every client's figures (clientfigures.py): a
        # fresh process loads a few dozen buckets, not four objects per
        # client.
        kept = figures.sm.queryUtility(IClientFigures)
        rows = []
        for client_id, parts in sorted(
                (kept.figures() if kept is not None else {}).items()):
            rows.append((client_id,
                         types.SimpleNamespace(**parts.get(NOTIFY, {})),
                         types.SimpleNamespace(**parts.get(SYNC, {}))))
        now = figures.now

        def family(name, help, value):
            samples = []
            for client_id, notifications, sync in rows:
                v = value(notifications, sync)
                if v is not None:
                    samples.append(((('client', client_id),), v))
            out.family(name, 'gauge', help, samples)

        family('lms_client_notifications_enabled',
               'Whether state changes are pushed to the client (1) or '
               'were switched off (0).',
               lambda n, s: bool(n.enabled))
        family('lms_client_notification_failures',
               'Failed pushes to the client in a row (notifications are '
               'switched off after notify-max-failures that span '
               'notify-failure-hours).',
               lambda n, s: n.failed)
        family('lms_client_seconds_since_notification',
               'Seconds since the last successful push to the client '
               '(absent: never).',
               lambda n, s: _since(now, n.last))
        family('lms_client_sync_failures',
               'Failed syncs of the client since its last successful one.',
               lambda n, s: s.failures)
        family('lms_client_seconds_since_sync',
               'Seconds since the start of the last successful sync of '
               'the client (absent: never).',
               lambda n, s: _since(now, s.last))

    def checker_figures(self, figures, out):
        data = figures.checker()
        out.family('lms_checker_up', 'gauge',
                   'Whether bin/checker published its figures within the '
                   'last %d s.' % gocept.lms.checkerstats.STALE_AFTER,
                   [((), bool(data and data['up']))])
        if data is None:
            return
        out.family('lms_checker_stats_age_seconds', 'gauge',
                   'Seconds since bin/checker last published its figures.',
                   [((), data['age'])])
        out.family('lms_checker_concurrency', 'gauge',
                   'Most checks bin/checker runs at the same time.',
                   [((), data.get('concurrency', 0))])
        out.family('lms_checker_checks_in_flight', 'gauge',
                   'Checks running now (the munin thread pool).',
                   [((), figures.in_flight())])
        out.family('lms_checker_checks_total', 'counter',
                   'Checks finished since bin/checker started, by the '
                   'resulting state.',
                   [((('state', state),), count) for state, count
                    in sorted(data.get('checks', {}).items())])
        latency = data.get('latency')
        if latency:
            samples = []
            cumulative = 0
            for bound, count in zip(
                    latency['bounds'] + ['+Inf'], latency['counts']):
                cumulative += count
                samples.append(('_bucket', (('le', _le(bound)),), cumulative))
            samples.append(('_sum', (), latency['sum']))
            samples.append(('_count', (), cumulative))
            out.family('lms_checker_check_duration_seconds', 'histogram',
                       'How long checks took, since bin/checker started '
                       '(pacing waits before the first request excluded).',
                       samples)

    def worker_figures(self, figures, out):
        """Every checker that leases shards of the schedule: each renews
        its lease in the database every few seconds with its figures, so
        this sees all of them, on whatever host they run."""
        workers = figures.workers()
        if not workers:
            return
        now = figures.now

        def each(function):
            return [((('checker', w.name),), function(w)) for w in workers]
        shards = dict(figures.worker_shards(workers))
        out.family('lms_check_worker_up', 'gauge',
                   'Whether the checker holds its lease (renewed it within '
                   'check-shard-lease).', each(lambda w: w.alive(now)))
        out.family('lms_check_worker_shards', 'gauge',
                   'Shards of the schedule the checker leases.',
                   each(lambda w: shards[w]))
        out.family('lms_check_worker_checks_in_flight', 'gauge',
                   'Checks the checker runs now (0 once it is down).',
                   each(lambda w: w.stats.get('in_flight', 0)
                        if w.alive(now) else 0))
        out.family('lms_check_worker_checks_total', 'counter',
                   'Checks the checker finished since it started, by the '
                   'resulting state.',
                   [((('checker', w.name), ('state', state)), count)
                    for w in workers for state, count
                    in sorted(w.stats.get('checks', {}).items())])

    def conflict_figures(self, figures, out):
        # This process's own counts, and those the checker published.
        rows = [('web', gocept.lms.conflicts.counts(
            gocept.lms.publication.WHERE))]
        data = figures.checker()
        if data is not None and 'conflicts' in data:
            rows.append(('checker', {'conflicts': data['conflicts'],
                                     'retries': data.get('retries', 0)}))
        out.family('lms_conflicts_total', 'counter',
                   'ConflictErrors since the process started: another '
                   'process had changed what the transaction read or '
                   'wrote.',
                   [((('process', process),), counts['conflicts'])
                    for process, counts in rows])
        out.family('lms_conflict_retries_total', 'counter',
                   'Conflicts that were retried since the process '
                   'started; the others were given up after the last '
                   'attempt (an error for the caller).',
                   [((('process', process),), counts['retries'])
                    for process, counts in rows])


def _le(bound):
    return bound if isinstance(bound, str) else repr(float(bound))


class MuninView:

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self):
        self.request.response.setHeader(
            'Content-Type', 'text/plain; charset=utf-8')
        self.request.response.setHeader('Cache-Control', 'no-store')
        return '%s:%d\n' % (self.label, self.value(Figures(self.context)))


class MuninQueueSize(MuninView):
    """`@@munin-queuesize`: URLs due for a check now."""

    label = 'queue-size'

    def value(self, figures):
        return figures.backlog()


class MuninThreadPool(MuninView):
    """`@@munin-threadpool`: checks the checker runs right now (0 when it
    is not running)."""

    label = 'thread-pool'

    def value(self, figures):
        return figures.in_flight()
