"""Database access for the worker processes (checker, notifier, syncer).

They work in short transactions of their own, outside any request, each
retried when another process wrote the same objects meanwhile, and tried
again when the database was out of reach for a while (PostgreSQL or the
ZEO server restarting): the process waits for it instead of dying.
"""

import contextlib
import itertools
import logging
import time

import transaction
import ZEO.Exceptions
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
    def read():
        connection = db.open()
        try:
            return [site.__name__ for site in lms_sites(connection)]
        finally:
            connection.close()
    return riding_out(read, 'worker', transaction.manager)


# A process that cannot reach the database tries again for this many
# seconds before the error reaches its caller; the pause between tries
# grows from OUTAGE_PAUSE_BASE to OUTAGE_PAUSE_MAX seconds.
OUTAGE_WAIT = 300.0
OUTAGE_PAUSE_BASE = 0.1
OUTAGE_PAUSE_MAX = 1.0


def disconnect_errors():
    """The errors that say the database is out of reach, whichever
    storage is configured: ZEO's `ClientDisconnected`, and those of the
    PostgreSQL driver RelStorage uses (a refused or broken connection is
    an `OperationalError`, a connection closed under it an
    `InterfaceError`). RelStorage itself reconnects at the start of the
    next transaction."""
    errors = [ZEO.Exceptions.ClientDisconnected]
    try:
        import psycopg2
    except ImportError:  # pragma: no cover (a dependency of the LMS)
        pass
    else:
        errors += [psycopg2.OperationalError, psycopg2.InterfaceError]
    return tuple(errors)


def disconnected(error):
    """Whether `error` says the database is out of reach."""
    return isinstance(error, disconnect_errors())


# What ZODB's connection says when it is to store a new object under an
# OID that an object it already holds has (its pickle cache refuses).
REISSUED_OID = 'A different object already has the same oid'


def reissued_oid(error):
    """Whether `error` says the storage handed out an OID that is in use
    already: RelStorage after PostgreSQL was killed hands out an OID range
    again that another storage still draws from, and a ZEO server after a
    restart OIDs that its clients still hold (db.txt). The transaction
    failed as a whole; another attempt takes the next OIDs."""
    return isinstance(error, ValueError) and str(error) == REISSUED_OID


def abort_quietly(manager):
    """Abort the transaction of `manager` after a lost connection. Even
    the abort may fail then (ZODB asks the storage for news as the
    transaction ends); the next transaction starts afresh anyway."""
    try:
        manager.abort()
    except disconnect_errors() as error:
        log.debug('abort after a lost connection: %s', error)


def riding_out(func, where, manager, wait=None, clock=time.monotonic,
               sleep=time.sleep):
    """Return func(), called again while the database is out of reach
    (`disconnected`), for up to `wait` seconds (OUTAGE_WAIT); then the
    error reaches the caller. The transaction of `manager` is aborted
    before each new try. func must be safe to repeat: a transaction of
    its own is (either it committed or nothing of it did)."""
    wait = OUTAGE_WAIT if wait is None else wait
    started = None
    for number in itertools.count():
        try:
            result = func()
        except disconnect_errors() as error:
            abort_quietly(manager)
            now = clock()
            if started is None:
                started = now
                log.warning('%s: the database is out of reach (%s: %s); '
                            'trying again for up to %.0f s', where,
                            type(error).__name__,
                            ' '.join(str(error).split())[:200], wait)
            if now - started >= wait:
                log.error('%s: the database stayed out of reach for '
                          '%.0f s; giving up', where, now - started)
                raise
            sleep(min(OUTAGE_PAUSE_MAX, OUTAGE_PAUSE_BASE * 2 ** number))
        else:
            if started is not None:
                log.warning('%s: the database is back after %.1f s',
                            where, clock() - started)
            return result


def wait_for_database(db, where, wait=None):
    """Wait until `db` answers again (a connection opens and reads the
    root), at most `wait` seconds (OUTAGE_WAIT); whether it does."""
    def probe():
        connection = db.open()
        try:
            connection.root()
        finally:
            connection.close()
    try:
        riding_out(probe, where, transaction.manager, wait)
    except disconnect_errors():
        return False
    return True


def retrying(manager, work, attempts=None, where='worker', turn=None):
    """Return work() run in a transaction of `manager`, retried on conflict
    and while the database is out of reach (`riding_out`).

    `turn`, a lock, is held by each attempt from the start of its
    transaction to its commit or abort (see `_retrying`)."""
    return riding_out(
        lambda: _retrying(manager, work, attempts, where, turn), where,
        manager)


def _retrying(manager, work, attempts, where, turn=None):
    """work() in a transaction of `manager`, retried on conflict.

    `transaction`'s attempts decide what is retried (ConflictError and the
    other transient errors), and so does `reissued_oid`; between attempts
    we pause a little longer each time (`conflicts.pause`), and every
    conflict is counted for the monitoring figures. The last attempt's
    error reaches the caller.

    With a lock as `turn`, threads of one process that would write the
    same objects take turns: an attempt starts its transaction (and so
    its view of the database) only once it holds the lock, and lets go
    after its commit or abort; the pause before a retry is taken without
    it.
    """
    attempts = attempts or gocept.lms.conflicts.ATTEMPTS
    turn = turn if turn is not None else contextlib.nullcontext()
    for number, attempt in enumerate(manager.attempts(attempts)):
        if number:
            # The previous attempt met a conflict and was aborted.
            gocept.lms.conflicts.record(where)
            log.info('%s: conflict, retrying (%d)', where, number)
            gocept.lms.conflicts.pause(number - 1)
        try:
            with turn, attempt:
                result = work()
        except ConflictError:
            gocept.lms.conflicts.record(where, retried=False)
            raise
        except ValueError as error:
            # `transaction` does not count it as transient; the attempt
            # has aborted its transaction already.
            if attempt is manager or not reissued_oid(error):
                raise
            log.warning('%s: the database handed out an OID that is in '
                        'use (after a crash of PostgreSQL?); retrying',
                        where)
            continue
        # An Attempt that swallowed a conflict has no success; the last
        # attempt is the manager itself, whose errors propagate.
        if getattr(attempt, 'success', True):
            return result


def stepwise(manager, work, items, step, smallest, attempts=None,
             where='worker', turn=None):
    """Yield work(part) for consecutive parts of the list `items`, each
    part in a transaction of its own (see `retrying`).

    Parts have up to `step` items. A part that conflicts is retried with
    half as many items, down to `smallest`: among many small writers a
    small transaction commits where a large one meets one of them on
    every attempt. After a part commits, the next may be twice as large
    again. The work must be safe to repeat on a part that failed."""
    start, size = 0, step
    while start < len(items):
        sizes = []

        def part():
            n = size if not sizes else max(smallest, sizes[-1] // 2)
            sizes.append(n)
            return work(items[start:start + n])
        yield retrying(manager, part, attempts, where, turn)
        start += sizes[-1]
        size = min(step, sizes[-1] * 2)


def in_transaction(db, site_name, work, attempts=None, where='worker'):
    """Return work(site) run in a transaction of its own, on a connection
    of its own, retried on conflict and while the database is out of reach
    (see `retrying`)."""
    # The thread's own manager: whatever joins the transaction (a mail
    # delivery, say) finds it through transaction.get().
    tm = transaction.manager

    def once():
        # Opening the connection already reads from the database.
        connection = db.open(tm)
        try:
            return _retrying(
                tm, lambda: work(root_folder(connection)[site_name]),
                attempts, where)
        finally:
            connection.close()
    return riding_out(once, where, tm)
