"""Content views of the LMS site's utilities in the site manager.

The clients, the URLs and the schedule are utilities of the site (Manage
Site, `default`). Their view in the site manager says what they hold and
leads to the pages of the LMS site that show it; the Registration tab,
with its Unregister button, is no longer what a click on them opens.
"""

import time

import zope.component.hooks
import zope.security.proxy
import zope.traversing.browser.absoluteurl


class UtilityView:

    title = ''

    def __init__(self, context, request):
        self.context = context
        self.request = request

    @property
    def utility(self):
        return zope.security.proxy.removeSecurityProxy(self.context)

    def site_url(self):
        # Traversal made the LMS site the current site on its way here.
        return zope.traversing.browser.absoluteurl.absoluteURL(
            zope.component.hooks.getSite(), self.request)

    def links(self):
        return []

    def figures(self):
        return []


class ClientsView(UtilityView):

    title = 'Clients'

    def figures(self):
        return [('Registered clients', len(self.utility))]

    def links(self):
        return [('The clients, a page at a time',
                 self.site_url() + '/@@overview.html'),
                ('Find a client by id or contact',
                 self.site_url() + '/@@search.html')]


class URLsView(UtilityView):

    title = 'URLs'

    def figures(self):
        return [('URLs watched', len(self.utility))]

    def links(self):
        return [('URLs per state, recent changes',
                 self.site_url() + '/@@dashboard.html'),
                ('Find URLs by host or beginning',
                 self.site_url() + '/@@search.html')]


class ScheduleView(UtilityView):

    title = 'Schedule of the checks'

    def figures(self):
        schedule = self.utility
        return [('URLs due for a check now', schedule.backlog(time.time())),
                ('Entries (one per URL, and those of removed URLs not '
                 'dropped yet)', len(schedule))]

    def links(self):
        return [('The dashboard', self.site_url() + '/@@dashboard.html')]
