"""The console scripts, and what they share at start.

Here: bin/web (the web server), bin/checker, bin/notifier, bin/sync (the
nightly syncer, run by cron) and bin/lms (all of them under supervisord).
Beside: bin/mailqueue (`scripts/mailqueue.py`, sends the queued mails)
and bin/lms-demo (`scripts/demo.py`, watches a running local LMS at
work). setup.py names the function behind each.

A script that cannot start says why in one line on stderr and exits with
status 2 (EXIT_CONFIG): the configuration cannot be read, the database
(the ZEO server, or PostgreSQL) cannot be reached, or there is no LMS
site.
"""

import argparse
import functools
import logging
import os
import sys
import time

import transaction
import ZConfig
import ZEO.Exceptions
import ZEO.zconfig
import ZODB
import ZODB.config
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
import gocept.lms.private
import gocept.lms.settings


log = logging.getLogger('gocept.lms')

DEFAULT_CONFIG = 'etc/zope.conf'

# Exit codes a cron job can act on.
EXIT_OK = 0
EXIT_CLIENT_FAILED = 1
EXIT_CONFIG = 2

# What the workers (bin/checker and its database process, bin/notifier,
# bin/sync) load instead of the configuration's site-definition: the
# model's components without the ZMI (src/gocept/lms/workers.zcml).
WORKERS_ZCML = os.path.join(
    os.path.dirname(gocept.lms.app.__file__), 'workers.zcml')

# How long the workers and the syncer wait at start for bin/web to create
# the LMS site in a new database (seconds), and how often they say so.
WAIT_FOR_SITE = 300.0
WAIT_POLL = 0.5
WAIT_REPORT = 5.0

# How long a script waits for the database at start unless the
# configuration (ZEO's wait-timeout) or --connect-timeout says, and how
# often it tries a database that refuses connections meanwhile (seconds).
CONNECT_TIMEOUT = 30.0
CONNECT_POLL = 0.5


# What reading a configuration raises: ZConfig's complaints, a file that
# cannot be read, a value of the wrong kind or an unknown key.
CONFIGURATION_ERRORS = (ZConfig.ConfigurationError, OSError, ValueError)


class CannotStart(Exception):
    """Why a script cannot start, as one line for stderr."""


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
    # Unknown keys fail here (ValueError), before anything is opened.
    gocept.lms.settings.get()
    return options


def configure(prog, config_file, quiet=False):
    """`read_configuration` for the console script `prog`; False after
    one line on stderr that says why the configuration cannot be read."""
    try:
        read_configuration(config_file, quiet=quiet)
    except CONFIGURATION_ERRORS as e:
        print('%s: cannot read the configuration: %s'
              % (prog, ' '.join(str(e).splitlines())), file=sys.stderr)
        return False
    return True


def open_database(config_file, filestorage=None, quiet=False,
                  bootstrap=True, where='web', connect_timeout=None,
                  zcml=None):
    """Read etc/zope.conf, load the ZCML, open the database.

    `zcml`: the ZCML file to load; None for the configuration's
    `site-definition` (etc/site.zcml: all that bin/web serves). The
    workers pass WORKERS_ZCML.

    `filestorage` replaces the configured database (a ZEO client, or
    RelStorage on PostgreSQL) with a FileStorage at that path, for
    maintenance without a database server.

    `bootstrap`: create what a new database lacks (the root folder, the
    LMS site; `app.bootstrap_database`), as bin/web does. The workers and
    the syncer pass False: they write nothing at start and wait for the
    site instead (`wait_for_site`). `where` names the process for the
    conflict counts (`conflicts.record`).

    `connect_timeout`: seconds to wait for the database server instead of
    the configured ZEO `wait-timeout` (or 30); CannotStart when it does
    not answer.
    """
    options = read_configuration(config_file, quiet)
    zope.app.appsetup.appsetup.config(zcml or options.site_definition)
    db = connect(options, filestorage, where, connect_timeout=connect_timeout)
    if bootstrap:
        try:
            gocept.lms.app.bootstrap_database(db, where)
        except BaseException:
            db.close()
            raise
    return db


def zeo_clients(options):
    """The ZEO client sections of the configured databases: ZEO's
    `<clientstorage>`, or ZODB's older `<zeoclient>`."""
    return [database.config.storage.config for database in options.databases
            if isinstance(database.config.storage,
                          (ZEO.zconfig.ClientStorageConfig,
                           ZODB.config.ZEOClient))]


def connect(options, filestorage=None, where='web',
            attempts=gocept.lms.conflicts.ATTEMPTS, connect_timeout=None,
            clock=time.monotonic, sleep=time.sleep):
    """Open the configured database (or the FileStorage `filestorage`).

    A database server that cannot be reached is waited for: ZEO's client
    waits by itself (its `wait-timeout`, which `connect_timeout`
    replaces); PostgreSQL refuses at once, and is tried again until
    `connect_timeout` (30) seconds have passed. Then CannotStart says
    which server did not answer.

    On an empty storage ZODB stores the root object while it opens the
    database. Two processes doing that at the same moment conflict, and
    the one that lost opens the database again (ZODB's own write, not
    inside a transaction we could retry).
    """
    clients = zeo_clients(options)
    if connect_timeout is not None:
        for client in clients:
            # only <clientstorage> has it
            if hasattr(client, 'wait_timeout'):
                client.wait_timeout = connect_timeout
    else:
        connect_timeout = max(
            (getattr(client, 'wait_timeout', None) or CONNECT_TIMEOUT
             for client in clients), default=CONNECT_TIMEOUT)
    started = clock()
    conflicts = 0
    while True:
        try:
            if filestorage:
                return ZODB.DB(ZODB.FileStorage.FileStorage(filestorage))
            return zope.app.appsetup.appsetup.multi_database(
                options.databases)[0][0]
        except ZEO.Exceptions.ClientDisconnected:
            # ClientStorage waited `wait_timeout` seconds already.
            raise CannotStart('cannot reach the database (%s) after %g s'
                              % (database_servers(options), connect_timeout))
        except gocept.lms.db.disconnect_errors() as error:
            if clock() - started >= connect_timeout:
                raise CannotStart(
                    'cannot reach the database (%s) after %g s: %s' % (
                        database_servers(options), connect_timeout,
                        str(error).strip().splitlines()[0]))
            log.info('%s: waiting for the database (%s)', where,
                     database_servers(options))
            sleep(CONNECT_POLL)
        except ConflictError:
            conflicts += 1
            last = conflicts == attempts
            gocept.lms.conflicts.record(where, retried=not last)
            if last:
                raise
            log.info('Conflict while opening the database, once more')
            gocept.lms.conflicts.pause(conflicts - 1)


def database_servers(options):
    """The database servers of the configuration, for a message: the ZEO
    servers' addresses, PostgreSQL's host, port and database (never a
    password)."""
    found = []
    for database in options.databases:
        storage = database.config.storage
        config = storage.config
        if isinstance(storage, (ZEO.zconfig.ClientStorageConfig,
                                ZODB.config.ZEOClient)):
            found.extend('ZEO server at %s' % format_address(server.address)
                         for server in config.server)
            continue
        dsn = getattr(getattr(getattr(config, 'adapter', None), 'config',
                              None), 'dsn', None)
        if dsn is not None:
            shown = [item for item in dsn.split()
                     if item.split('=')[0] in ('host', 'port', 'dbname')]
            found.append('PostgreSQL at %s' % ' '.join(shown))
        else:
            found.append(type(storage).__name__)
    return ', '.join(found)


def format_address(address):
    """host:port of a TCP address, or the path of a unix socket."""
    if isinstance(address, tuple):
        return '%s:%s' % address
    return str(address)


def open_for(prog, args, **kw):
    """`open_database` for the console script `prog` with the options
    `args` (-C, --connect-timeout); None after one line on stderr that
    says why the database cannot be opened."""
    try:
        return open_database(
            args.config, connect_timeout=args.connect_timeout, **kw)
    except CannotStart as e:
        message = str(e)
    except CONFIGURATION_ERRORS as e:
        message = 'cannot open the database: %s' % ' '.join(
            str(e).splitlines())
    print('%s: %s' % (prog, message), file=sys.stderr)
    return None


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
    add_config_option(parser)
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
    add_connect_timeout_option(parser)
    parser.epilog = ('Exit status: 0 all went well, 1 at least one client '
                     'failed, 2 the configuration or the database could '
                     'not be opened, or there is no LMS site.')
    args = parser.parse_args(argv)

    db = open_for('sync', args, filestorage=args.filestorage,
                  quiet=args.quiet, bootstrap=False, where='sync',
                  zcml=WORKERS_ZCML)
    if db is None:
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
                failures.extend(
                    (client_id, 'no such client') for client_id
                    in gocept.lms.db.retrying(
                        transaction.manager, lambda: [
                            client_id for client_id in args.client or ()
                            if client_id not in zope.component.getUtility(
                                gocept.lms.interfaces.IClientProvider)],
                        where='sync'))
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


def add_config_option(parser, help='zope.conf to use'):
    parser.add_argument('-C', '--config', default=DEFAULT_CONFIG,
                        help=help + ' (default: %(default)s)')


def add_wait_option(parser):
    parser.add_argument(
        '--wait', type=float, default=WAIT_FOR_SITE, metavar='SECONDS',
        help='on a new database, wait this long for bin/web to create the '
             'LMS site, then give up with exit status 2 '
             '(default: %(default).0f)')


def positive_seconds(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError('not a positive number: %s' % text)
    return value


def add_connect_timeout_option(parser):
    parser.add_argument(
        '--connect-timeout', type=positive_seconds, metavar='SECONDS',
        help='wait this long for the database (the ZEO server, or '
             'PostgreSQL) at start, then give up with exit status 2 '
             '(default: wait-timeout of a <clientstorage> in the '
             'configuration, otherwise 30)')


def web_main(argv=None):
    import waitress
    import zope.app.wsgi
    parser = argparse.ArgumentParser(
        prog='web',
        description='Serve the ZMI and the XML-RPC API (http-address in '
                    'the configuration). On a new database it creates the '
                    'LMS site first.',
        epilog='Exit status 2: the configuration or the database could '
               'not be opened.')
    add_config_option(parser)
    parser.add_argument('--threads', type=int, default=4,
                        help='requests served at the same time '
                             '(default: %(default)s)')
    add_connect_timeout_option(parser)
    args = parser.parse_args(argv)
    db = open_for('web', args)
    if db is None:
        return EXIT_CONFIG
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


def ensure_secret(path):
    """The random secret in the file `path`, created on first use.

    Returns (secret, created).
    """
    import secrets
    try:
        gocept.lms.private.write(path, secrets.token_urlsafe(24) + '\n')
        created = True
    except FileExistsError:
        created = False
    with open(path) as f:
        return f.read().strip(), created


def ensure_admin_secret(path):
    """Create the admin secret for the management API unless it exists;
    the new secret, or None."""
    secret, created = ensure_secret(path)
    return secret if created else None


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
    gocept.lms.private.write(
        path, ADMIN_ZCML.format(login='admin', hash=hashed))
    gocept.lms.private.write(
        os.path.join(var, 'initial-admin-password'),
        'admin %s\n' % password, replace=True)
    return password


# etc/supervisord.conf reads the password of supervisord's socket from
# this environment variable; bin/lms sets it from var/supervisor-secret.
SUPERVISOR_SECRET = 'LMS_SUPERVISOR_SECRET'

# bin/lms: the LMS is already running (bin/lms), or not (bin/lms ACTION).
EXIT_RUNNING = 1

LMS_DESCRIPTION = """\
Without an action: run the local LMS in the foreground, from the checkout.
supervisord starts the ZEO server, the web server, the checker, the
notifier and the mail queue (etc/supervisord.conf), restarts a process
that crashes, and stops them all on Ctrl-C. The first start creates the
ZMI admin login and the admin secret.

With an action: control the running LMS (through supervisorctl)."""

LMS_EPILOG = """\
actions:
  status             the processes and their states
  restart NAME       restart one process: zeo, web, checker, notifier or
                     mailqueue (stop NAME, start NAME likewise)
  tail -f NAME       follow the log of a process (logs are in var/log/)
  shutdown           stop every process, and the bin/lms that runs them
  help               every action supervisorctl knows

exit status: 0 stopped or done; 1 the LMS is already running (bin/lms) or
not running (bin/lms ACTION); 2 not started from a checkout; with an
action otherwise that of supervisorctl."""


def supervisord_pid(config):
    """The pid of the supervisord that serves the socket of `config`,
    True if one answers without saying, None if none does."""
    import xmlrpc.client
    import supervisor.options
    options = supervisor.options.ClientOptions()
    options.realize(['-c', config])
    try:
        return options.getServerProxy().supervisor.getPID()
    except xmlrpc.client.Error:
        return True
    except OSError:
        # No socket, or a stale one nobody listens on (supervisord
        # replaces it when it starts).
        return None


def lms_main(argv=None):
    """Run the whole LMS under supervisord, or control a running one.

    `bin/lms` runs in the foreground until Ctrl-C; `bin/lms status`,
    `bin/lms restart web`, ... talk to it through supervisorctl.
    """
    parser = argparse.ArgumentParser(
        prog='lms', usage='%(prog)s [-h] [ACTION [ARGUMENT ...]]',
        description=LMS_DESCRIPTION, epilog=LMS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('action', nargs=argparse.REMAINDER,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = os.path.join('etc', 'supervisord.conf')
    if not os.path.exists(config):
        print('lms: run me from the checkout (no %s here)' % config,
              file=sys.stderr)
        return EXIT_CONFIG
    # What the LMS writes is for this user only: supervisord and the
    # processes it starts inherit the umask (the ZEO server's var/Data.fs,
    # the logs), and var/ is closed to others even where it was not.
    os.umask(0o077)
    var = gocept.lms.private.directory('var')
    gocept.lms.private.restrict(var)
    gocept.lms.private.directory(os.path.join(var, 'log'))
    gocept.lms.private.restrict(os.path.join('etc', 'admin.zcml'))
    # With a password on its socket supervisord does not warn (CRIT)
    # that anyone who can reach the socket controls it.
    os.environ[SUPERVISOR_SECRET] = ensure_secret(
        os.path.join(var, 'supervisor-secret'))[0]
    running = supervisord_pid(config)
    if args.action:
        if running is None and args.action[0] != 'help':
            print('lms: the LMS is not running; bin/lms starts it',
                  file=sys.stderr)
            return EXIT_RUNNING
        import supervisor.supervisorctl
        return supervisor.supervisorctl.main(['-c', config] + args.action)
    if running is not None:
        print('lms: the LMS is already running%s; bin/lms status shows it'
              % ('' if running is True else ' (pid %s)' % running),
              file=sys.stderr)
        return EXIT_RUNNING
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
    add_config_option(parser)
    parser.add_argument('--once', action='store_true', help=once_help)
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='log warnings and errors only')
    add_wait_option(parser)
    add_connect_timeout_option(parser)
    parser.epilog = ('Exit status 2: the configuration or the database '
                     'could not be opened, or there is no LMS site.')
    args = parser.parse_args(argv)
    db = open_for(prog, args, quiet=args.quiet, bootstrap=False, where=prog,
                  zcml=WORKERS_ZCML)
    if db is None:
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
            functools.partial(open_database, zcml=WORKERS_ZCML),
            args.config, args.quiet)
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
