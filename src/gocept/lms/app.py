"""The LMS site and its creation.

An LMS is a folder that is a site. When it is added to its container, it
gets a local site manager holding the client and URL providers as local
utilities; everything else finds them through the component registry.

Only bin/web (and the tests) create anything at start: the root folder and
its utilities (zope.app.appsetup), the schema generations
(zope.generations) and the LMS site (`bootstrap` below), all subscribers
of the events `bootstrap_database` fires. The workers only read at start:
they wait until the site is there (`site_missing`, used by scripts/).
"""

import logging

import transaction
import transaction.interfaces
import zope.app.publication.zopepublication
import zope.component
import zope.event
import zope.generations.generations
import zope.generations.interfaces
import zope.interface
import zope.processlifetime
import zope.site.folder
import zope.site.site
from zope.app.appsetup.bootstrap import getInformationFromEvent
import zope.app.appsetup.interfaces

import gocept.lms.client
import gocept.lms.clientfigures
import gocept.lms.conflicts
import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.journal
import gocept.lms.statecounts
import gocept.lms.recent
import gocept.lms.schedule
import gocept.lms.settings
import gocept.lms.url
import gocept.lms.urlsearch


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
     gocept.lms.statecounts.StateCounts),
    ('changes', gocept.lms.interfaces.IChangeJournal,
     gocept.lms.journal.ChangeJournal),
    ('url-search', gocept.lms.interfaces.IURLSearch,
     gocept.lms.urlsearch.URLSearchIndex),
    ('recent-changes', gocept.lms.interfaces.IRecentChanges,
     gocept.lms.recent.RecentChanges),
    ('client-figures', gocept.lms.interfaces.IClientFigures,
     gocept.lms.clientfigures.ClientFigures),
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
    try:
        if root_folder is not None and name not in root_folder:
            root_folder[name] = LMS()
            transaction.commit()
            log.info('Created the LMS site %r', name)
    except BaseException:
        # A conflict, say: the connection cannot close while it is still
        # part of the failed transaction.
        transaction.abort()
        raise
    finally:
        connection.close()


def bootstrap_database(db, where='web',
                       attempts=gocept.lms.conflicts.ATTEMPTS):
    """Create what a new database lacks, as bin/web does at start.

    Fires `DatabaseOpened`, whose subscribers create the root folder, its
    utilities, the schema generations and the LMS site, or bring the
    schema up to the minimum generation. Each checks first and commits
    what it created. When another process does the same at the same time,
    one of these commits fails with a ConflictError: then everything is
    aborted and starts over, and finds what the other process created.
    So does an OID that the storage handed out twice (db.txt).

    A loop of its own rather than `transaction`'s `attempts()`: the
    subscribers commit themselves, and zope.generations reports a
    conflicting evolve step as `UnableToEvolve`, which `attempts()` would
    not retry.
    """
    for attempt in range(attempts):
        try:
            zope.event.notify(zope.processlifetime.DatabaseOpened(db))
            return
        except Exception as error:
            transaction.abort()
            if not _conflict(error):
                raise
            last = attempt + 1 == attempts
            gocept.lms.conflicts.record(where, retried=not last)
            if last:
                raise
            log.info('Conflict while preparing the database (%s), '
                     'starting over', error)
            gocept.lms.conflicts.pause(attempt)


def _conflict(error):
    if isinstance(error, zope.generations.generations.UnableToEvolve):
        error = error.__context__
    return (isinstance(error, transaction.interfaces.TransientError)
            or gocept.lms.db.reissued_oid(error))


def site_missing(db, name):
    """What keeps the workers from starting, as text, or None.

    They need the LMS site `name` and the database schema at least at the
    minimum generation of every schema manager; bin/web creates the one
    and evolves the other. Only reads.
    """
    connection = db.open()
    try:
        root = connection.root()
        folder = root.get(
            zope.app.publication.zopepublication.ZopePublication.root_name)
        site = folder.get(name) if folder is not None else None
        if not gocept.lms.interfaces.ILMS.providedBy(site):
            return 'there is no LMS site %r in the database' % name
        generations = root.get(
            zope.generations.generations.generations_key, {})
        for key, manager in sorted(zope.component.getUtilitiesFor(
                zope.generations.interfaces.ISchemaManager)):
            generation = generations.get(key)
            if generation is None or (
                    generation < manager.minimum_generation):
                return ('the database schema %s is at generation %s, '
                        'below %d' % (key, generation,
                                      manager.minimum_generation))
        return None
    finally:
        connection.close()
