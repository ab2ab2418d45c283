"""The LMS site and its creation.

An LMS is a folder that is a site. When it is added to its container, it
gets a local site manager holding the client and URL providers as local
utilities; everything else finds them through the component registry.
"""

import logging

import transaction
import zope.component
import zope.interface
import zope.site.folder
import zope.site.site
from zope.app.appsetup.bootstrap import getInformationFromEvent
import zope.app.appsetup.interfaces

import gocept.lms.client
import gocept.lms.interfaces
import gocept.lms.metrics
import gocept.lms.schedule
import gocept.lms.settings
import gocept.lms.url


log = logging.getLogger(__name__)

# Names of the utilities inside the site manager's default folder.
UTILITIES = (
    ('clients', gocept.lms.interfaces.IClientProvider,
     gocept.lms.client.ClientProvider),
    ('urls', gocept.lms.interfaces.IURLProvider,
     gocept.lms.url.URLProvider),
    ('schedule', gocept.lms.interfaces.ISchedule,
     gocept.lms.schedule.Schedule),
    ('state-counts', gocept.lms.interfaces.IStateCounts,
     gocept.lms.metrics.StateCounts),
)


@zope.interface.implementer(gocept.lms.interfaces.ILMS)
class LMS(zope.site.folder.Folder):
    """The LMS site.

    It brings its site manager and utilities along from the start: the
    container machinery treats a site as one from the moment it is added.
    zope.site moves the site manager's bases into place once the site
    lands in its container.
    """

    def __init__(self):
        super().__init__()
        self.setSiteManager(zope.site.site.LocalSiteManager(self))
        install_missing_utilities(self)


def install_missing_utilities(site):
    """Create and register the utilities the site does not have yet."""
    sm = site.getSiteManager()
    default = sm['default']
    for name, iface, factory in UTILITIES:
        if name not in default:
            default[name] = factory()
            sm.registerUtility(default[name], iface)


@zope.component.adapter(
    zope.app.appsetup.interfaces.IDatabaseOpenedWithRootEvent)
def bootstrap(event):
    """Create the LMS site in the root folder on first start.

    Its name comes from `site-name` in the product configuration.
    """
    name = gocept.lms.settings.get().site_name
    db, connection, root, root_folder = getInformationFromEvent(event)
    if root_folder is not None and name not in root_folder:
        root_folder[name] = LMS()
        transaction.commit()
        log.info('Created the LMS site %r', name)
    connection.close()
