"""The admins' overview of an LMS site in the ZMI: clients, their sync and
notification state, and the two things admins steer most: a forced sync
and switching notifications back on."""

import datetime

import zope.component
import zope.publisher.browser
import zope.security.proxy

import gocept.lms.interfaces
from gocept.lms.interfaces import INotifications, ISynchronization


def when(dt):
    return dt.strftime('%Y-%m-%d %H:%M UTC') if dt is not None else ''


class Overview(zope.publisher.browser.BrowserView):

    message = ''

    def _lookup(self, iface):
        # The page's permission guards it; the components are read
        # unproxied so the template gets plain values.
        site = zope.security.proxy.removeSecurityProxy(self.context)
        return zope.component.queryUtility(iface, context=site)

    def update(self):
        if self.request.method != 'POST':
            return  # links and reloads never change anything
        clients = self._lookup(gocept.lms.interfaces.IClientProvider)
        form = self.request.form
        client = clients.get(form.get('client', '')) if form.get(
            'client') else None
        if client is not None and 'force-sync' in form:
            ISynchronization(client).force = True
            self.message = ('%s will be synced at the next run of bin/sync.'
                            % client.id)
        elif client is not None and 'enable-notifications' in form:
            notifications = INotifications(client)
            notifications.enabled = True
            notifications.failed = 0
            self.message = 'Notifications to %s are on again.' % client.id

    def summary(self):
        urls = self._lookup(gocept.lms.interfaces.IURLProvider)
        schedule = self._lookup(gocept.lms.interfaces.ISchedule)
        counts = self._lookup(gocept.lms.interfaces.IStateCounts)
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        return dict(
            urls=len(urls),
            due=schedule.backlog(now) if schedule is not None else 0,
            states=[dict(state=state, count=count)
                    for state, count in (counts.counts().items()
                                         if counts is not None else ())])

    def clients(self):
        clients = self._lookup(gocept.lms.interfaces.IClientProvider)
        result = []
        for client in clients.values():
            sync = ISynchronization(client)
            notifications = INotifications(client)
            result.append(dict(
                id=client.id,
                contact='%s <%s>' % (client.contact_name,
                                     client.contact_email),
                callback=client.callback or '',
                urls=len(client.url_ids),
                last_sync=when(sync.last) or 'never',
                sync_failures=sync.failures,
                sync_error=sync.last_error or '',
                force=sync.force,
                notifications=notifications.enabled,
                last_notification=when(notifications.last) or 'never',
                failed=notifications.failed,
                pending=len(notifications.pending)))
        return result

    def __call__(self):
        self.update()
        return self.index()
