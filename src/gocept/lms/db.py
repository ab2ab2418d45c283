"""Database access for the worker processes (checker, notifier, syncer).

They work in short transactions of their own, outside any request, each
retried when another process wrote the same objects meanwhile.
"""

import logging

import transaction
import zope.app.publication.zopepublication
from ZODB.POSException import ConflictError

import gocept.lms.conflicts
import gocept.lms.interfaces


log = logging.getLogger(__name__)

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


def retrying(manager, work, attempts=None, where='worker'):
    """Return work() run in a transaction of `manager`, retried on conflict.

    `transaction`'s attempts decide what is retried (ConflictError and the
    other transient errors); between attempts we pause a little longer
    each time (`conflicts.pause`), and every conflict is counted for the
    monitoring figures. The last attempt's error reaches the caller.
    """
    attempts = attempts or gocept.lms.conflicts.ATTEMPTS
    for number, attempt in enumerate(manager.attempts(attempts)):
        if number:
            # The previous attempt met a conflict and was aborted.
            gocept.lms.conflicts.record(where)
            log.info('%s: conflict, retrying (%d)', where, number)
            gocept.lms.conflicts.pause(number - 1)
        try:
            with attempt:
                result = work()
        except ConflictError:
            gocept.lms.conflicts.record(where, retried=False)
            raise
        # An Attempt that swallowed a conflict has no success; the last
        # attempt is the manager itself, whose errors propagate.
        if getattr(attempt, 'success', True):
            return result


def in_transaction(db, site_name, work, attempts=None, where='worker'):
    """Return work(site) run in a transaction of its own, on a connection
    of its own, retried on conflict (see `retrying`)."""
    # The thread's own manager: whatever joins the transaction (a mail
    # delivery, say) finds it through transaction.get().
    tm = transaction.manager
    connection = db.open(tm)
    try:
        return retrying(
            tm, lambda: work(root_folder(connection)[site_name]),
            attempts, where)
    finally:
        connection.close()
