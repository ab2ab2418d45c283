"""Database access for the worker processes (checker, notifier, syncer).

They work in short transactions of their own, outside any request, each
retried when another process wrote the same objects meanwhile.
"""

import logging

import transaction
import zope.app.publication.zopepublication
from ZODB.POSException import ConflictError

import gocept.lms.interfaces


log = logging.getLogger(__name__)

ATTEMPTS = 5


def root_folder(connection):
    return connection.root()[
        zope.app.publication.zopepublication.ZopePublication.root_name]


def lms_sites(connection):
    """The LMS sites in the root folder."""
    return [obj for obj in root_folder(connection).values()
            if gocept.lms.interfaces.ILMS.providedBy(obj)]


def lms_site_names(db):
    connection = db.open()
    try:
        return [site.__name__ for site in lms_sites(connection)]
    finally:
        connection.close()


def in_transaction(db, site_name, work, attempts=ATTEMPTS):
    """Return work(site) run in a transaction of its own.

    A ConflictError starts over with fresh data, up to `attempts` times.
    """
    # The thread's own manager: whatever joins the transaction (a mail
    # delivery, say) finds it through transaction.get().
    tm = transaction.manager
    for attempt in range(attempts):
        connection = db.open(tm)
        try:
            with tm:
                return work(root_folder(connection)[site_name])
        except ConflictError:
            if attempt + 1 == attempts:
                raise
            log.info('conflict in %s, retrying (%d)',
                     getattr(work, '__name__', 'work'), attempt + 1)
        finally:
            connection.close()
