"""One client: contact, callback, sync and notification state, its URLs a
page at a time, and what admins do with a client.

A client may have 100,000 URLs: the page walks the client's key set
(`IClient.url_ids`) from a cursor and reads the records of one page only,
through the URL provider's batch readers. With a state filter it reads
records a chunk at a time until the page is full or it has looked at
`SCAN` URLs, and then offers to go on from there.
"""

import itertools

import gocept.lms.browser.actions
import gocept.lms.browser.status
from gocept.lms.browser.common import Page, url_rows, when
from gocept.lms.interfaces import IClientProvider, INotifications
from gocept.lms.interfaces import ISynchronization, IURLProvider, STATES


PAGE_SIZE = 50
# URLs one request looks at most for a filtered page.
SCAN = 5000
# Records read at once for a filtered page.
CHUNK = 500


class ClientPage(Page):

    client = None
    removed = False
    confirm_unregister = False

    def update(self):
        clients = self.utility(IClientProvider)
        client_id = self.text('id')
        self.client_id = client_id
        client = clients.get(client_id) if client_id else None
        if client is None:
            self.request.response.setStatus(404)
            return
        self.client = client
        state = self.text('state')
        self.state_filter = state if state in STATES else ''
        after = self.text('after')
        self.after = int(after) if after.isdigit() else None
        self.act()
        if self.removed:
            self.client = None
            return
        self.rows, self.next_after, self.scanned = self.page()

    def act(self):
        actions = gocept.lms.browser.actions
        if self.posted('force-sync'):
            self.message = actions.force_sync(self.client)
        elif self.posted('notifications-on'):
            self.message = actions.notifications_on(self.client)
        elif self.posted('check-now'):
            rows = self.page()[0]
            count = actions.check_now(self.site, [r['key'] for r in rows])
            self.message = (
                '%d URLs of this page will be checked at once (%d had a '
                'check pending already).' % (count, len(rows) - count))
        elif self.posted('unregister'):
            if self.request.form.get('confirm') == self.client.id:
                self.message = actions.unregister(self.site, self.client.id)
                self.removed = True
            else:
                self.confirm_unregister = True

    def page(self):
        """`(rows, cursor for the next page or None, URLs looked at)`."""
        urls = self.utility(IURLProvider)
        ids = self.client.url_ids
        keys = iter(ids.keys(min=self.after, excludemin=True)
                    if self.after is not None else ids.keys())
        rows, scanned, last = [], 0, None
        while len(rows) < PAGE_SIZE and scanned < SCAN:
            size = CHUNK if self.state_filter else PAGE_SIZE - len(rows)
            chunk = list(itertools.islice(keys, size))
            if not chunk:
                return rows, None, scanned
            for row in url_rows(self, urls, chunk):
                last = row['key']
                if self.state_filter and row['state'] != self.state_filter:
                    continue
                rows.append(row)
                if len(rows) >= PAGE_SIZE:
                    break
            if len(rows) < PAGE_SIZE:
                last = chunk[-1]
            scanned += len(chunk)
        more = last is not None and next(
            iter(ids.keys(min=last, excludemin=True)), None) is not None
        return rows, (last if more else None), scanned

    def info(self):
        client = self.client
        sync = ISynchronization(client)
        notifications = INotifications(client)
        return dict(
            id=client.id,
            contact=client.contact_name,
            email=client.contact_email,
            callback=client.callback or '',
            status_url=gocept.lms.browser.status.status_url(client),
            urls=len(client.url_ids),
            last_sync=when(sync.last, 'never'),
            last_sync_attempt=when(sync.last_attempt, 'never'),
            sync_failures=sync.failures,
            sync_error=sync.last_error or '',
            force=sync.force,
            notifications=notifications.enabled,
            disabled_by=notifications.disabled_by or '',
            disabled_at=when(notifications.disabled_at),
            last_push=when(notifications.last, 'never'),
            last_push_attempt=when(notifications.last_attempt, 'never'),
            push_failures=notifications.failed,
            push_failure=self.push_failure(notifications),
            pending=len(notifications.pending))

    def push_failure(self, notifications):
        if not notifications.failed:
            return ''
        text = '%d failed in a row' % notifications.failed
        if notifications.failing_since is not None:
            text += ' since ' + when(notifications.failing_since)
        return '%s: %s' % (text, notifications.last_error or '')

    def states(self):
        return [dict(value=state, selected=state == self.state_filter)
                for state in STATES]

    def next_href(self):
        if self.next_after is None:
            return ''
        return self.page_url('client.html', id=self.client.id,
                             state=self.state_filter, after=self.next_after)

    def first_href(self):
        if self.after is None:
            return ''
        return self.page_url('client.html', id=self.client.id,
                             state=self.state_filter)
