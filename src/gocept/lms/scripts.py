"""Console entry points: bin/web, bin/sync and bin/lms."""

import argparse
import logging
import os
import sys
import time

import transaction
import ZConfig
import ZODB
import ZODB.FileStorage
import zope.app.appsetup.appsetup
import zope.app.appsetup.product
import zope.app.publication.zopepublication
import zope.component.hooks
from ZODB.POSException import ConflictError

import gocept.lms.app
import gocept.lms.conflicts
import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.settings


log = logging.getLogger('gocept.lms')

DEFAULT_CONFIG = 'etc/zope.conf'

# Exit codes a cron job can act on.
EXIT_OK = 0
EXIT_CLIENT_FAILED = 1
EXIT_CONFIG = 2

# How long the workers and the syncer wait at start for bin/web to create
# the LMS site in a new database (seconds), and how often they say so.
WAIT_FOR_SITE = 300.0
WAIT_POLL = 0.5
WAIT_REPORT = 5.0


def read_configuration(config_file, quiet=False):
    """Read etc/zope.conf: product configuration and logging.

    Returns the ZConfig options. `quiet` keeps the log to warnings and
    errors.
    """
    schema = ZConfig.loadSchema(os.path.join(
        os.path.dirname(zope.app.appsetup.__file__), 'schema', 'schema.xml'))
    options, handlers = ZConfig.loadConfig(schema, config_file)
    zope.app.appsetup.product.setProductConfigurations(
        options.product_config)
    options.eventlog()
    for logger in options.loggers:
        logger()
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
    return options


def open_database(config_file, filestorage=None, quiet=False,
                  bootstrap=True, where='web'):
    """Read etc/zope.conf, load the ZCML, open the database.

    `filestorage` replaces the configured database (usually the ZEO client)
    with a FileStorage at that path, for maintenance without a ZEO server.

    `bootstrap`: create what a new database lacks (the root folder, the
    LMS site; `app.bootstrap_database`), as bin/web does. The workers and
    the syncer pass False: they write nothing at start and wait for the
    site instead (`wait_for_site`). `where` names the process for the
    conflict counts (`conflicts.record`).
    """
    options = read_configuration(config_file, quiet)
    zope.app.appsetup.appsetup.config(options.site_definition)
    db = connect(options, filestorage, where)
    if bootstrap:
        try:
            gocept.lms.app.bootstrap_database(db, where)
        except BaseException:
            db.close()
            raise
    return db


def connect(options, filestorage=None, where='web',
            attempts=gocept.lms.conflicts.ATTEMPTS):
    """Open the configured database (or the FileStorage `filestorage`).

    On an empty storage ZODB stores the root object while it opens the
    database. Two processes doing that at the same moment conflict, and
    the one that lost opens the database again (ZODB's own write, not
    inside a transaction we could retry).
    """
    for attempt in range(attempts):
        try:
            if filestorage:
                return ZODB.DB(ZODB.FileStorage.FileStorage(filestorage))
            return zope.app.appsetup.appsetup.multi_database(
                options.databases)[0][0]
        except ConflictError:
            last = attempt + 1 == attempts
            gocept.lms.conflicts.record(where, retried=not last)
            if last:
                raise
            log.info('Conflict while opening the database, once more')
            gocept.lms.conflicts.pause(attempt)


def wait_for_site(db, prog, timeout=WAIT_FOR_SITE, poll=WAIT_POLL,
                  report=WAIT_REPORT, clock=time.monotonic,
                  sleep=time.sleep):
    """Wait until bin/web has created the LMS site; False if it does not
    within `timeout` seconds (then a line on stderr says why).

    Only reads: a worker that starts with bin/web on a new database must
    not create the site too (app.py).
    """
    name = gocept.lms.settings.get().site_name
    start = clock()
    next_report = start
    while True:
        missing = gocept.lms.app.site_missing(db, name)
        if missing is None:
            return True
        waited = clock() - start
        if waited >= timeout:
            print('%s: %s after %.0f s; bin/web creates the site and '
                  'brings the schema up to date when it starts'
                  % (prog, missing, waited), file=sys.stderr)
            return False
        if clock() >= next_report:
            log.info('%s: waiting for bin/web: %s (%.0f s so far)',
                     prog, missing, waited)
            next_report += report
        sleep(min(poll, max(0.0, timeout - waited)))


def sync_main(argv=None):
    import gocept.lms.sync
    parser = argparse.ArgumentParser(
        prog='sync',
        description='Synchronize the URL lists of all due clients with the '
                    'LMS and send them every state. Meant for cron, hourly: '
                    'each client is synced once a day, a failed one again '
                    'soon after.')
    parser.add_argument('-C', '--config', default=DEFAULT_CONFIG,
                        help='zope.conf to use (default: %(default)s)')
    parser.add_argument('--filestorage', metavar='PATH',
                        help='open this FileStorage instead of the database '
                             'in the configuration (no other process may '
                             'use it meanwhile)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--force', action='store_true',
                       help='sync every client, due or not')
    which.add_argument('--client', action='append', metavar='ID',
                       help='sync this client now (repeatable)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='report failures only (for cron mail)')
    add_wait_option(parser)
    args = parser.parse_args(argv)

    try:
        db = open_database(args.config, args.filestorage, args.quiet,
                           bootstrap=False, where='sync')
    except (ZConfig.ConfigurationError, OSError) as e:
        print('sync: cannot open the database: %s' % e, file=sys.stderr)
        return EXIT_CONFIG
    failed = False
    try:
        # With --filestorage nobody else can create the site meanwhile.
        if not wait_for_site(
                db, 'sync', 0 if args.filestorage else args.wait):
            return EXIT_CONFIG
        connection = db.open()
        sites = gocept.lms.db.lms_sites(connection)
        if not sites:
            log.error('sync: no LMS site in the database')
            return EXIT_CONFIG
        for site in sites:
            zope.component.hooks.setSite(site)
            try:
                results, failures = gocept.lms.sync.run(
                    force_all=args.force, only=args.client)
                clients = zope.component.getUtility(
                    gocept.lms.interfaces.IClientProvider)
                failures.extend(
                    (client_id, 'no such client')
                    for client_id in args.client or ()
                    if client_id not in clients)
            finally:
                zope.component.hooks.setSite(None)
            log.info(
                'sync of %s done: %d clients synced, %d failed, %d URLs '
                'added, %d removed, %d states sent',
                site.__name__, len(results), len(failures),
                sum(r.added for r in results),
                sum(r.removed for r in results),
                sum(r.notified for r in results))
            for client_id, error in failures:
                print('sync: %s failed: %s' % (client_id, error),
                      file=sys.stderr)
            failed = failed or bool(failures)
        transaction.abort()
        connection.close()
    finally:
        gocept.lms.conflicts.log_summary(log)
        db.close()
    return EXIT_CLIENT_FAILED if failed else EXIT_OK


def add_wait_option(parser):
    parser.add_argument(
        '--wait', type=float, default=WAIT_FOR_SITE, metavar='SECONDS',
        help='on a new database, wait this long for bin/web to create the '
             'LMS site, then give up with exit status 2 '
             '(default: %(default).0f)')


def web_main(argv=None):
    import waitress
    import zope.app.wsgi
    parser = argparse.ArgumentParser(
        prog='web', description='Serve the ZMI and the XML-RPC API.')
    parser.add_argument('-C', '--config', default=DEFAULT_CONFIG)
    parser.add_argument('--threads', type=int, default=4)
    args = parser.parse_args(argv)
    db = open_database(args.config)
    app = zope.app.wsgi.WSGIPublisherApplication(db)
    settings = gocept.lms.settings.get()
    log.info('Serving on http://%s/', settings.http_address)
    # waitress would buffer up to 1 GB of a request body before the
    # application can refuse it.
    waitress.serve(app, listen=settings.http_address, threads=args.threads,
                   ident='gocept.lms',
                   max_request_body_size=settings.max_request_bytes)


ADMIN_ZCML = '''\
<configure xmlns="http://namespaces.zope.org/zope">
  <!-- The ZMI admin login, written by bin/lms on first start.
       Change login or password here (the password is a BCRYPT hash). -->
  <principal id="lms.admin" title="LMS administrator"
             login="{login}" password_manager="BCRYPT"
             password="{hash}" />
  <grant role="zope.Manager" principal="lms.admin" />
</configure>
'''


def ensure_admin_secret(path):
    """Create the admin secret for the management API unless it exists."""
    import secrets
    if os.path.exists(path):
        return None
    secret = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(secret + '\n')
    return secret


def ensure_admin(etc='etc', var='var'):
    """Write etc/admin.zcml with a random password unless it exists.

    A fixed default password would be the same on every fresh install;
    a random one is printed once and kept in var/ for the owner only.
    """
    import secrets
    import zope.password.password
    path = os.path.join(etc, 'admin.zcml')
    if os.path.exists(path):
        return None
    password = secrets.token_urlsafe(12)
    hashed = zope.password.password.BCRYPTPasswordManager().encodePassword(
        password).decode('ascii')
    with open(path, 'w') as f:
        f.write(ADMIN_ZCML.format(login='admin', hash=hashed))
    note = os.path.join(var, 'initial-admin-password')
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write('admin %s\n' % password)
    return password


def lms_main(argv=None):
    """Run the whole LMS under supervisord, or control a running one.

    `bin/lms` runs in the foreground until Ctrl-C; `bin/lms status`,
    `bin/lms restart web`, ... talk to it through supervisorctl.
    """
    argv = sys.argv[1:] if argv is None else argv
    config = os.path.join('etc', 'supervisord.conf')
    if not os.path.exists(config):
        print('lms: run me from the checkout (no %s here)' % config,
              file=sys.stderr)
        return EXIT_CONFIG
    for directory in ('var', os.path.join('var', 'log')):
        os.makedirs(directory, exist_ok=True)
    if argv:
        import supervisor.supervisorctl
        return supervisor.supervisorctl.main(['-c', config] + argv)
    password = ensure_admin()
    if password:
        print('First start: the ZMI login is admin / %s '
              '(also in var/initial-admin-password; change it in '
              'etc/admin.zcml).' % password)
    if ensure_admin_secret(os.path.join('var', 'admin-secret')):
        print('First start: the admin secret for registerClient and the '
              'other management calls is in var/admin-secret.')
    import supervisor.supervisord
    print('Starting the LMS (logs in var/log/, Ctrl-C stops everything).')
    return supervisor.supervisord.main(['-n', '-c', config])


def run_worker(prog, description, once_help, argv, work):
    """Common frame of the worker processes: options, database, exit.

    `work(db, args)` does the work (`args.once`: one round); it returns a
    line for the log.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description + ' Runs as a daemon unless --once is '
                    'given.')
    parser.add_argument('-C', '--config', default=DEFAULT_CONFIG,
                        help='zope.conf to use (default: %(default)s)')
    parser.add_argument('--once', action='store_true', help=once_help)
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='log warnings and errors only')
    add_wait_option(parser)
    args = parser.parse_args(argv)
    try:
        db = open_database(args.config, quiet=args.quiet, bootstrap=False,
                           where=prog)
    except (ZConfig.ConfigurationError, OSError, ValueError) as e:
        print('%s: cannot start: %s' % (prog, e), file=sys.stderr)
        return EXIT_CONFIG
    try:
        if not wait_for_site(db, prog, args.wait):
            return EXIT_CONFIG
        log.info('%s done: %s', prog, work(db, args))
    except KeyboardInterrupt:
        pass
    finally:
        gocept.lms.conflicts.log_summary(log)
        db.close()
    return EXIT_OK


def checker_main(argv=None):
    import asyncio
    import gocept.lms.checker

    def work(db, args):
        # The database side in a process of its own (checker.py says why).
        writer = gocept.lms.checker.ProcessWriter(
            open_database, args.config, args.quiet)
        return asyncio.run(gocept.lms.checker.Runner(
            db, writer=writer).run(once=args.once))
    return run_worker(
        'checker', 'Check due URLs and record their states.',
        'check what is due now, then exit', argv, work)


def notifier_main(argv=None):
    import gocept.lms.notify

    def work(db, args):
        notifier = gocept.lms.notify.Notifier(db)
        if not args.once:
            notifier.run()
        results = notifier.run_once()
        return '%d clients, %d states sent' % (
            len(results), sum(results.values()))
    return run_worker(
        'notifier', 'Push state changes to the clients.',
        'push to every due client once, then exit', argv, work)
