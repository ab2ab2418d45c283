"""The Clients tab of the LMS site: every client with its sync and
notification state, a page of them at a time, and the two things admins
steer most: a forced sync and switching notifications back on."""

import itertools

import gocept.lms.browser.actions
from gocept.lms.browser.common import Page, client_states, when
from gocept.lms.interfaces import IClientProvider


PAGE_SIZE = 100


class Overview(Page):

    def update(self):
        clients = self.utility(IClientProvider)
        self.after = self.text('after')
        client = clients.get(self.text('client')) if self.text(
            'client') else None
        if client is not None:
            if self.posted('force-sync'):
                self.message = gocept.lms.browser.actions.force_sync(client)
            elif self.posted('enable-notifications'):
                self.message = gocept.lms.browser.actions.notifications_on(
                    client)
        self.count = len(clients)
        # Client ids in order, from the one after `after`: a page reads
        # only its own clients.
        ids = (key for key in clients.keys(self.after or None)
               if key != self.after)
        page = list(itertools.islice(ids, PAGE_SIZE + 1))
        self.next_href = (self.page_url(
            'overview.html', after=page[PAGE_SIZE - 1])
            if len(page) > PAGE_SIZE else '')
        self.first_href = (self.page_url('overview.html')
                           if self.after else '')
        self.rows = [self.row(*states) for states in client_states(
            clients[key] for key in page[:PAGE_SIZE])]

    def row(self, client, notifications, sync):
        return dict(
            id=client.id,
            href=self.client_href(client.id),
            contact=client.contact_name,
            email=client.contact_email,
            urls=len(client.url_ids),
            last_sync=when(sync.last, 'never'),
            sync_failures=sync.failures,
            force=sync.force,
            notifications=notifications.enabled,
            disabled_by=notifications.disabled_by or '',
            last_notification=when(notifications.last, 'never'),
            failed=notifications.failed,
            pending=len(notifications.pending))
