"""The dashboard, the default view of the LMS site: how the LMS is doing.

Every figure here is cheap to read, as for @@metrics (browser/metrics.py):
the per-state counters, the schedule's backlog, the checker's published
figures, one small record per client, the change journal's counter and
the ring of recent changes (recent.py). No URL record is read but those
of the recent changes.
"""

import time

import gocept.lms.browser.metrics
from gocept.lms.browser.common import Page, client_states, state_class
from gocept.lms.browser.common import when, when_micro, when_seconds
from gocept.lms.interfaces import (
    DISABLED_BY_LMS, IChangeJournal, IClientProvider, IRecentChanges,
    IStateCounts, IURLProvider, STATES)


# A change the notifier has not handed out after this long means it is
# not running (it looks every notify-poll seconds, 5 by default).
NOTIFIER_LATE = 120


def duration(seconds):
    seconds = int(seconds)
    if seconds < 120:
        return '%d s' % seconds
    if seconds < 7200:
        return '%d min' % (seconds // 60)
    if seconds < 2 * 86400:
        return '%d h' % (seconds // 3600)
    return '%d days' % (seconds // 86400)


class Dashboard(Page):

    def update(self):
        now = time.time()
        figures = gocept.lms.browser.metrics.Figures(self.context, now)
        urls = self.utility(IURLProvider)
        counts = self.utility(IStateCounts)
        self.total = len(urls)
        self.states = [
            dict(state=state, count=counts[state], css=state_class(state))
            for state in STATES] if counts is not None else []
        self.backlog = figures.backlog()
        self.checker = self._checker(figures.checker())
        self.notifier = self._notifier(now)
        self.failing = self._failing_clients()
        self.recent = self._recent(urls)

    def _checker(self, data):
        if data is None:
            return dict(published=False)
        result = dict(published=True, up=data['up'],
                      age=duration(data['age']))
        checks = sum(data.get('checks', {}).values())
        started = data.get('started')
        uptime = max(1.0, data.get('updated', 0) - (started or 0))
        result['checks'] = checks
        result['started'] = when_seconds(started, 'unknown')
        # The checker counts since it started; it publishes no figure per
        # hour. Over its first hour the two are the same.
        result['last_hour'] = uptime <= 3600
        result['per_hour'] = int(checks * 3600 / uptime)
        result['in_flight'] = data.get('in_flight', 0) if data['up'] else 0
        result['states'] = sorted(data.get('checks', {}).items())
        return result

    def _notifier(self, now):
        journal = self.utility(IChangeJournal)
        waiting = len(journal) if journal is not None else 0
        result = dict(waiting=waiting, late=False, oldest='')
        if waiting:
            # Only read when something waits: the entries are few unless
            # the notifier has been away.
            entries = journal.pending()
            if entries:
                oldest = entries[0][0]
                result['oldest'] = when_micro(oldest)
                result['late'] = now - oldest / 1e6 > NOTIFIER_LATE
        return result

    def _failing_clients(self):
        clients = self.utility(IClientProvider)
        result = []
        for client, notifications, sync in client_states(clients.values()):
            # A client that switched its notifications off itself does
            # not fail.
            if not (sync.failures or notifications.failed
                    or notifications.disabled_by == DISABLED_BY_LMS):
                continue
            result.append(dict(
                id=client.id, href=self.client_href(client.id),
                sync_failures=sync.failures,
                sync_error=sync.last_error or '',
                last_sync=when(sync.last, 'never'),
                notifications=notifications.enabled,
                disabled_by=notifications.disabled_by or '',
                push_failures=notifications.failed,
                push_error=notifications.last_error or '',
                last_push=when(notifications.last, 'never')))
        return result

    def _recent(self, urls):
        recent = self.utility(IRecentChanges)
        if recent is None:
            return []
        changes = recent.latest()
        strings = dict(urls.strings([key for _, key, _, _ in changes]))
        return [dict(when=when_micro(at), key=key, href=self.url_href(key),
                     url=strings.get(key, '(removed)'),
                     before=before, before_css=state_class(before),
                     now=now, now_css=state_class(now))
                for at, key, before, now in changes]
