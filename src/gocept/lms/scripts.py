"""Console entry points: bin/web, bin/sync and bin/lms."""

import argparse
import logging
import os
import sys

import transaction
import ZConfig
import ZODB
import ZODB.FileStorage
import zope.app.appsetup.appsetup
import zope.app.appsetup.product
import zope.app.publication.zopepublication
import zope.component.hooks
import zope.event
import zope.processlifetime

import gocept.lms.db
import gocept.lms.interfaces
import gocept.lms.settings


log = logging.getLogger('gocept.lms')

DEFAULT_CONFIG = 'etc/zope.conf'

# Exit codes a cron job can act on.
EXIT_OK = 0
EXIT_CLIENT_FAILED = 1
EXIT_CONFIG = 2


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


def open_database(config_file, filestorage=None, quiet=False):
    """Read etc/zope.conf, load the ZCML, open the database.

    `filestorage` replaces the configured database (usually the ZEO client)
    with a FileStorage at that path, for maintenance without a ZEO server.
    """
    options = read_configuration(config_file, quiet)
    zope.app.appsetup.appsetup.config(options.site_definition)
    if filestorage:
        db = ZODB.DB(ZODB.FileStorage.FileStorage(filestorage))
    else:
        db = zope.app.appsetup.appsetup.multi_database(
            options.databases)[0][0]
    zope.event.notify(zope.processlifetime.DatabaseOpened(db))
    return db


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
    args = parser.parse_args(argv)

    try:
        db = open_database(args.config, args.filestorage, args.quiet)
    except (ZConfig.ConfigurationError, OSError) as e:
        print('sync: cannot open the database: %s' % e, file=sys.stderr)
        return EXIT_CONFIG
    failed = False
    try:
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
        db.close()
    return EXIT_CLIENT_FAILED if failed else EXIT_OK


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

    `work(db, once)` does the work; it returns a line for the log.
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
    args = parser.parse_args(argv)
    try:
        db = open_database(args.config, quiet=args.quiet)
    except (ZConfig.ConfigurationError, OSError, ValueError) as e:
        print('%s: cannot start: %s' % (prog, e), file=sys.stderr)
        return EXIT_CONFIG
    try:
        log.info('%s done: %s', prog, work(db, args.once))
    except KeyboardInterrupt:
        pass
    finally:
        db.close()
    return EXIT_OK


def checker_main(argv=None):
    import asyncio
    import gocept.lms.checker

    def work(db, once):
        return asyncio.run(gocept.lms.checker.Runner(db).run(once=once))
    return run_worker(
        'checker', 'Check due URLs and record their states.',
        'check what is due now, then exit', argv, work)


def notifier_main(argv=None):
    import gocept.lms.notify

    def work(db, once):
        notifier = gocept.lms.notify.Notifier(db)
        if not once:
            notifier.run()
        results = notifier.run_once()
        return '%d clients, %d states sent' % (
            len(results), sum(results.values()))
    return run_worker(
        'notifier', 'Push state changes to the clients.',
        'push to every due client once, then exit', argv, work)
