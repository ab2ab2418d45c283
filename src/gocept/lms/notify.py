"""The notifier: pushes state changes to the clients.

Each client has a pending map, URL key -> when its state last changed.
Each round of the notifier first fills them from the change journal, where
the checker notes the URLs whose state changed (journal.py). A push of one
client:

1. read the pending map (one short transaction);
2. send the current states with updateManyStates, in batches, each read in
   a short transaction of its own (none stays open while a batch travels);
3. in a new transaction, remove each pushed key whose change time is still
   the one read in step 1.

A URL that changes again during step 2 gets a new change time, so step 3
keeps it and the next push sends the new state: no change is ever lost. A
URL not checked yet is not sent and stays pending until it has a state
(client.py says why a subscription can put it there).

If step 2 fails, nothing is removed and `failed` counts the failures in a
row. The next try waits `notify-retry` seconds, doubling with every
failure up to `notify-retry-max`. Once the failures are at least
`notify-max-failures` and span at least `notify-failure-hours` since the
first of them, the notifier switches the client's notifications off, the
contact gets a mail and an INotificationsDisabledEvent fires: a client that
is down for minutes keeps its notifications. The syncer tries such a client
once a day and, when it answers, switches them back on
(`switch_back_on`, an INotificationsReenabledEvent and a mail).
"""

import concurrent.futures
import datetime
import logging
import time

import zope.component
import zope.event
import zope.interface

import gocept.lms.backoff
import gocept.lms.callback
import gocept.lms.clock
import gocept.lms.db
import gocept.lms.failures
import gocept.lms.interfaces
import gocept.lms.journal
import gocept.lms.settings
from gocept.lms.interfaces import IChangeJournal, IClientProvider
from gocept.lms.interfaces import INotifications
from gocept.lms.interfaces import IURLProvider


log = logging.getLogger(__name__)



@zope.interface.implementer(gocept.lms.interfaces.INotificationsDisabledEvent)
class NotificationsDisabledEvent:

    def __init__(self, client, failures, error, since, when):
        self.client = client
        self.failures = failures
        self.error = error
        self.since = since
        self.when = when


@zope.interface.implementer(
    gocept.lms.interfaces.INotificationsReenabledEvent)
class NotificationsReenabledEvent:

    def __init__(self, client, disabled_at, when):
        self.client = client
        self.disabled_at = disabled_at
        self.when = when


def due(notifications, now, settings):
    """Whether a client should get a push at `now`: it has changes, its
    notifications are on, and since the last try `notify-interval` has
    passed and, after failures, the backoff."""
    if not notifications.enabled or not len(notifications.pending):
        return False
    last = notifications.last_attempt
    if last is None:
        return True
    wait = max(datetime.timedelta(seconds=settings.notify_interval),
               gocept.lms.backoff.backoff(
                   notifications.failed,
                   datetime.timedelta(seconds=settings.notify_retry),
                   datetime.timedelta(seconds=settings.notify_retry_max)))
    return now - last >= wait


def switch_back_on(client, now):
    """The client answered a sync: if the LMS had switched its
    notifications off, switch them on again (the contact is mailed).
    Return whether it did."""
    notifications = INotifications(client)
    if notifications.disabled_by != gocept.lms.interfaces.DISABLED_BY_LMS:
        return False
    disabled_at = notifications.disabled_at
    notifications.switch_on()
    log.info('%s: answered again, notifications switched back on',
             client.id)
    zope.event.notify(NotificationsReenabledEvent(client, disabled_at, now))
    return True


class Notifier:
    """Pushes the pending changes of every client of every LMS site."""

    def __init__(self, db, settings=None):
        self.db = db
        self.settings = settings or gocept.lms.settings.get()

    def _retrying(self, site_name, work):
        """Run work(client provider) in its own transaction, retried."""
        return gocept.lms.db.in_transaction(
            self.db, site_name, lambda site: work(
                site.getSiteManager().getUtility(IClientProvider)),
            where='notifier')

    def distribute(self, site_name):
        """Hand the change journal's entries to the clients' pending maps
        (journal.py), in short transactions; return how many URLs."""
        def step(site):
            sm = site.getSiteManager()
            return gocept.lms.journal.distribute(
                sm.getUtility(IChangeJournal), sm.getUtility(IURLProvider),
                sm.getUtility(IClientProvider))
        total = 0
        while True:
            handed = gocept.lms.db.in_transaction(
                self.db, site_name, step, where='notifier')
            if not handed:
                return total
            total += handed

    def due_clients(self, site_name, now):
        def work(clients):
            return [c.id for c in clients.values()
                    if due(INotifications(c), now, self.settings)]
        return self._retrying(site_name, work)

    def push(self, site_name, client_id, now=None):
        """Push one client's pending changes; return the number sent."""
        now = now or gocept.lms.clock.utcnow()

        def read(clients):
            client = clients.get(client_id)
            if client is None:
                return None
            notifications = INotifications(client)
            notifications.last_attempt = now
            snapshot = dict(notifications.pending.items())
            return (snapshot,
                    notifications.pending.keys_to_send(snapshot, client),
                    client.callback,
                    client.callback_password(self.settings.secret_key_file))
        read = self._retrying(site_name, read)
        if not read or not read[0]:
            return 0
        snapshot, keys, callback, password = read

        # A URL not checked yet is no news: it stays pending until the
        # checker has a state for it.
        unknown = set()

        def rows(some):
            return gocept.lms.db.in_transaction(
                self.db, site_name, lambda site: [
                    row for row in site.getSiteManager().getUtility(
                        IURLProvider).state_rows(some, unknown)
                    if row[1] != gocept.lms.interfaces.UNKNOWN],
                where='notifier')
        error = None
        sent = 0
        try:
            # No transaction stays open while the client takes its time:
            # each batch is read in one of its own.
            if keys:
                transport = zope.component.getUtility(
                    gocept.lms.interfaces.ICallbackTransport)
                sent = gocept.lms.callback.send_states(
                    transport.connect(
                        callback, self.settings.callback_timeout),
                    client_id, password, keys,
                    rows, self.settings.callback_batch_size)
        except Exception as e:
            error = e

        if error is not None:
            self._retrying(site_name, lambda clients: self._failed(
                clients.get(client_id), error, now))
            return 0

        def done(clients):
            client = clients.get(client_id)
            if client is None:
                return
            notifications = INotifications(client)
            notifications.pending.remove_unchanged(
                {key: when for key, when in snapshot.items()
                 if key not in unknown})
            notifications.last = now
            notifications.failed = 0
            notifications.failing_since = None
        self._retrying(site_name, done)
        log.info('%s: %d states sent', client_id, sent)
        return sent

    def _failed(self, client, error, now):
        if client is None:
            return
        notifications = INotifications(client)
        # A run of failures stored before its start was recorded starts
        # its clock now.
        if not notifications.failed or notifications.failing_since is None:
            notifications.failing_since = now
        notifications.failed += 1
        text = gocept.lms.failures.describe(error)
        notifications.last_error = text
        log.warning('%s: push failed (%d in a row): %s',
                    client.id, notifications.failed, text)
        settings = self.settings
        since = notifications.failing_since
        if (notifications.enabled
                and notifications.failed >= settings.notify_max_failures
                and now - since >= datetime.timedelta(
                    hours=settings.notify_failure_hours)):
            notifications.switch_off(
                gocept.lms.interfaces.DISABLED_BY_LMS, now)
            log.error('%s: notifications disabled after %d failures '
                      'since %s', client.id, notifications.failed,
                      since.isoformat())
            zope.event.notify(NotificationsDisabledEvent(
                client, notifications.failed, text, since, now))

    def run_once(self, now=None, workers=None):
        """Push to every due client; return {client id: states sent}."""
        now = now or gocept.lms.clock.utcnow()
        sites = gocept.lms.db.lms_site_names(self.db)
        for site in sites:
            self.distribute(site)
        jobs = [(site, client_id) for site in sites
                for client_id in self.due_clients(site, now)]
        results = {}
        workers = workers or self.settings.notify_workers
        # A client that hangs until its timeout must not hold up the rest.
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = {pool.submit(self.push, site, client_id, now): client_id
                       for site, client_id in jobs}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
        return results

    def run(self, poll=None):
        poll = poll or self.settings.notify_poll
        while True:
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:
                log.exception('notifier round failed')
            time.sleep(max(0.0, poll - (time.monotonic() - started)))


@zope.component.adapter(gocept.lms.interfaces.INotificationsDisabledEvent)
def mail_notifications_disabled(event):
    import gocept.lms.mail
    gocept.lms.mail.send_notifications_disabled(
        event.client, event.failures, event.since, event.when)


@zope.component.adapter(gocept.lms.interfaces.INotificationsReenabledEvent)
def mail_notifications_reenabled(event):
    import gocept.lms.mail
    gocept.lms.mail.send_notifications_reenabled(
        event.client, event.disabled_at, event.when)
