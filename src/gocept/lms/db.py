"""Database access for the worker processes (checker, notifier, syncer).

They work in short transactions of their own, outside any request, each
retried when another process wrote the same objects meanwhile.
"""

import logging
import random
import time

import transaction
import zope.app.publication.zopepublication

import gocept.lms.interfaces


log = logging.getLogger(__name__)

# A conflict means another process wrote the same objects meanwhile; the
# retry starts over with fresh data. Ten attempts with backoff outlast any
# burst of concurrent writers we have seen.
ATTEMPTS = 10
BASE_BACKOFF = 0.01
MAX_BACKOFF = 1.0


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


def backoff(attempt):
    """Seconds to wait before retry `attempt` (1, 2, ...): growing, capped,
    and random, so that two processes that conflicted do not meet again
    at once."""
    return random.uniform(0, min(MAX_BACKOFF, BASE_BACKOFF * 2 ** attempt))


def retrying(manager, work, attempts=ATTEMPTS, where='worker'):
    """Return work() run in a transaction of `manager`, retried on conflict.

    `transaction`'s attempts decide what is retried (ConflictError and the
    other transient errors); between attempts we wait a little longer each
    time. The last attempt's error reaches the caller.
    """
    for number, attempt in enumerate(manager.attempts(attempts)):
        if number:
            log.info('%s: conflict, retrying (%d)', where, number)
            time.sleep(backoff(number))
        with attempt:
            result = work()
        # The last attempt is the manager itself: its errors propagate.
        if attempt is manager or attempt.success:
            return result


def in_transaction(db, site_name, work, attempts=ATTEMPTS, where='worker'):
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
