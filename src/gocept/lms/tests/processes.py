"""Real processes and servers for end-to-end tests: a ZEO server or
PostgreSQL, the LMS scripts, a client's XML-RPC callback, a web server to check."""

import os
import random
import re
import socket
import subprocess
import threading
import time
import xmlrpc.server

import gocept.lms


CHECKOUT = os.path.abspath(os.path.join(
    os.path.dirname(gocept.lms.__file__), '..', '..', '..'))
BIN = os.path.join(CHECKOUT, 'bin')


def file_settings(directory):
    """Product settings that put every file the LMS keeps in the
    checkout's var/ by default (checker figures, secret key, mail queue,
    ...) into `directory`: tests leave nothing in the checkout."""
    import zope.schema
    from gocept.lms.interfaces import ISettings
    return {name.replace('_', '-'):
            os.path.join(directory, os.path.basename(field.default))
            for name, field in zope.schema.getFields(ISettings).items()
            if isinstance(field.default, str) and
            field.default.startswith('var/')}


# What tests leave in the checkout on purpose: the browser test's
# screenshots, for people to look at (ignored by git).
LEFT_ON_PURPOSE = frozenset([os.path.join('var', 'screenshots')])


def checkout_files():
    """The names in the checkout, its var/ and etc/: where the LMS writes
    its files by default (but for what tests leave there on purpose)."""
    names = {os.path.join(directory, name)
             for directory in ('', 'var', 'etc')
             if os.path.isdir(os.path.join(CHECKOUT, directory))
             for name in os.listdir(os.path.join(CHECKOUT, directory))}
    var = {name for name in names if name.startswith('var' + os.sep)}
    if var and var <= LEFT_ON_PURPOSE:
        # var/ itself, where a fresh checkout has none, made for them
        names.discard('var')
    return names - LEFT_ON_PURPOSE


# The kernel gives outgoing connections local ports from this range; the
# lowest port of it where /proc does not say.
EPHEMERAL_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'
EPHEMERAL_LOW = 32768
# Ports for the test servers are drawn from here up to that range.
LOWEST_PORT = 10000


def ephemeral_low():
    try:
        with open(EPHEMERAL_RANGE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW


def free_port(host='127.0.0.1'):
    """A port of `host` that nothing is bound to now, for a server a test
    starts. It comes from below the kernel's range for outgoing
    connections: a port of that range (what binding to port 0 gives) can
    become the local port of any connection between this call and the
    server's start, which then fails with "Address already in use"."""
    high = ephemeral_low()
    for attempt in range(200):
        port = random.randrange(LOWEST_PORT, high) if (
            high > LOWEST_PORT + 1000) else 0
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError('no free port on %s' % host)


def wait_for_port(host, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError('Nothing listens on %s:%s' % (host, port))


class ZEOServer:
    """bin/runzeo over a FileStorage in `directory`, on a free port."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.address = ('127.0.0.1', self.port)
        self.process = None

    def start(self):
        self.log = open(os.path.join(self.directory, 'zeo.log'), 'wb')
        self.process = subprocess.Popen(
            [os.path.join(BIN, 'runzeo'),
             '-a', '127.0.0.1:%d' % self.port,
             '-f', os.path.join(self.directory, 'Data.fs')],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(*self.address)
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
            self.log.close()


def zodb_section(storage):
    """The <zodb> section of the configuration, with its %import, for
    `storage`: a ZEO server (a ZEOServer or its port) as in etc/zope.conf,
    or a PostgreSQL database (a pgserver.PostgreSQL) as in
    etc/zodb-postgresql.conf. Tests and benchmarks run with the caches
    production has."""
    import gocept.lms.pgserver
    if isinstance(storage, gocept.lms.pgserver.PostgreSQL):
        text = _etc('zodb-postgresql.conf')
        section = text[re.search('^%import', text, re.M).start():
                       text.index('</zodb>') + 7]
        return section.replace('%include relstorage.conf',
                               relstorage_section(storage))
    text = _etc('zope.conf')
    section = text[re.search('^<zodb>', text, re.M).start():
                   text.index('</zodb>') + 7]
    return '%import ZEO\n' + re.sub(
        r'server \S+', 'server 127.0.0.1:%d' % getattr(
            storage, 'port', storage), section)


def relstorage_section(database):
    """etc/relstorage.conf's <relstorage> section for the PostgreSQL
    database `database`."""
    text = _etc('relstorage.conf')
    section = text[text.index('<relstorage>'):
                   text.index('</relstorage>') + len('</relstorage>')]
    return re.sub(r'dsn .*', lambda m: 'dsn ' + database.dsn(), section)


def _etc(name):
    with open(os.path.join(CHECKOUT, 'etc', name)) as f:
        return f.read()


def postgresql(directory):
    """A PostgreSQL server of its own (pgserver.py) in `directory`, on a
    free port, started; tests give each LMS a database of its own in it
    (`database`)."""
    import gocept.lms.pgserver
    return gocept.lms.pgserver.PostgreSQL(
        os.path.join(directory, 'postgresql'), free_port()).start()


_databases = iter(range(1, 10 ** 9))


def database(server):
    """A new, empty database on the PostgreSQL `server`: a
    pgserver.PostgreSQL for it."""
    import gocept.lms.pgserver
    name = 'lms_test_%d_%d' % (os.getpid(), next(_databases))
    server.create_database(name)
    return gocept.lms.pgserver.PostgreSQL(
        server.directory, server.port, database=name, user=server.user)


ZOPE_CONF = '''\
site-definition {site_zcml}
{zodb}
<eventlog>
  level INFO
  <logfile>
    path STDERR
  </logfile>
</eventlog>
<product-config gocept.lms>
{product_config}
</product-config>
'''


def lms_settings(directory, port, smtp_port, admin_secret, **more):
    """Product configuration of an LMS whose web server listens on `port`
    and whose mail goes to an SMTP sink on `smtp_port`, with
    `admin_secret` in a file in `directory`; `more` overrides or adds
    settings (underscores for dashes)."""
    secret = os.path.join(directory, 'admin-secret')
    with open(secret, 'w') as f:
        f.write(admin_secret + '\n')
    settings = {
        'http-address': '127.0.0.1:%d' % port,
        'public-url': 'http://127.0.0.1:%d/lms/' % port,
        'secret-key-file': os.path.join(directory, 'secret.key'),
        'admin-secret-file': secret,
        'mail-queue': '',
        'smtp-host': '127.0.0.1',
        'smtp-port': str(smtp_port),
        'smtp-helo-name': 'localhost',
        'checker-allow-cidrs': '127.0.1.0/24',
        'checker-per-host-rate': '0',
    }
    settings.update((k.replace('_', '-'), str(v)) for k, v in more.items())
    return settings


MONITOR_SITE_ZCML = '''\
<configure xmlns="http://namespaces.zope.org/zope">
  <!-- The LMS as etc/site.zcml has it, and a monitoring login for
       @@metrics. -->
  <include file="{site}" />
  <principal id="lms.test.monitor" title="Monitoring"
             login="{login}" password_manager="Plain Text"
             password="{password}" />
  <grant role="gocept.lms.Monitor" principal="lms.test.monitor" />
</configure>
'''


def write_monitor_site_zcml(directory, login, password):
    """A site.zcml in `directory`: etc/site.zcml and a monitoring login."""
    path = os.path.join(directory, 'site.zcml')
    with open(path, 'w') as f:
        f.write(MONITOR_SITE_ZCML.format(
            site=os.path.join(CHECKOUT, 'etc', 'site.zcml'),
            login=login, password=password))
    return path


def write_zope_conf(directory, storage, product_config, site_zcml=None):
    """zope.conf in `directory` for the database `storage` (a ZEO server
    or a PostgreSQL database, see `zodb_section`), with etc/site.zcml
    unless `site_zcml` names another. Files the product configuration does
    not place go into `directory`."""
    product_config = dict(file_settings(directory), **product_config)
    path = os.path.join(directory, 'zope.conf')
    with open(path, 'w') as f:
        f.write(ZOPE_CONF.format(
            site_zcml=site_zcml or os.path.join(CHECKOUT, 'etc', 'site.zcml'),
            zodb=zodb_section(storage),
            product_config='\n'.join(
                '  %s %s' % item for item in sorted(product_config.items()))))
    return path


def _stat(pid):
    """State and parent pid of process `pid`, or None once it is gone."""
    import gocept.lms.pgserver
    return gocept.lms.pgserver.process_state(pid)


def child_pids(pid):
    """The pids of the children of process `pid`."""
    return [int(name) for name in os.listdir('/proc')
            if name.isdigit() and (_stat(name) or (None, None))[1] == pid]


def alive(pid):
    """Whether process `pid` runs (a zombie does not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ('Z', 'X')


def run_script(name, *args, timeout=120):
    """Run bin/<name> from the checkout; return the CompletedProcess."""
    return subprocess.run(
        [os.path.join(BIN, name)] + list(args), cwd=CHECKOUT,
        capture_output=True, text=True, timeout=timeout)


def open_site(db, cleanup):
    """The LMS site in a connection of its own to `db`, made the current
    site; returns (transaction manager, site). `cleanup(function)` closes
    the connection later (a TestCase's addCleanup)."""
    import transaction
    import zope.app.publication.zopepublication
    import zope.component.hooks
    tm = transaction.TransactionManager()
    connection = db.open(tm)
    cleanup(connection.close)
    root = connection.root()[
        zope.app.publication.zopepublication.ZopePublication.root_name]
    zope.component.hooks.setSite(root['lms'])
    return tm, root['lms']


class WebServerThread:
    """The checker tests' local HTTP server, in a thread of its own (for
    tests whose own code runs an event loop, such as the checker's)."""

    def __init__(self, hosts=('127.0.1.1',)):
        import asyncio
        import threading
        from gocept.lms.checking.tests.server import LocalHTTPServer
        self.loop = asyncio.new_event_loop()
        self.server = LocalHTTPServer(hosts)
        self.thread = threading.Thread(target=self.loop.run_forever)
        self.thread.daemon = True
        self.thread.start()
        asyncio.run_coroutine_threadsafe(
            self.server.start(), self.loop).result(10)

    def url(self, path, host=None):
        return self.server.url(path, host)

    def stop(self):
        import asyncio
        asyncio.run_coroutine_threadsafe(
            self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
    rpc_paths = ('/db/',)


class CallbackServer:
    """A client's XML-RPC callback that checks the credentials it gets."""

    def __init__(self, client_id, password, links, port=0):
        self.client_id, self.password, self.links = client_id, password, links
        self.received = []
        self.calls = []
        # called with each batch of states, in the server's thread
        self.on_update = None
        self.server = xmlrpc.server.SimpleXMLRPCServer(
            ('127.0.0.1', port), requestHandler=Handler, logRequests=False)
        self.port = self.server.server_address[1]
        self.server.register_function(
            self.xmlrpc_getAllLinks, 'xmlrpc_getAllLinks')
        self.server.register_function(
            self.updateManyStates, 'updateManyStates')
        self.url = 'http://127.0.0.1:%d/db/' % self.port
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.daemon = True
        self.thread.start()

    def _auth(self, client_id, password):
        if (client_id, password) != (self.client_id, self.password):
            raise ValueError('wrong credentials')

    def xmlrpc_getAllLinks(self, client_id, password):
        self._auth(client_id, password)
        self.calls.append('getAllLinks')
        return self.links

    def updateManyStates(self, client_id, password, states):
        self._auth(client_id, password)
        self.calls.append('updateManyStates %d' % len(states))
        self.received.extend(states)
        if self.on_update is not None:
            self.on_update(states)
        return True

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """A callback that takes connections and never answers: a client whose
    site hangs. Counts the connections it took."""

    def __init__(self):
        self.socket = socket.create_server(('127.0.0.1', 0))
        self.port = self.socket.getsockname()[1]
        self.url = 'http://127.0.0.1:%d/db/' % self.port
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, address = self.socket.accept()
            except OSError:
                return  # closed by stop()
            self.accepted.append(connection)  # held open, never read

    def wait_for_connections(self, count, timeout=30):
        """Wait until `count` connections were taken (the kernel completes
        a connection before this thread takes it); return how many."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.accepted)

    def stop(self):
        self.socket.close()
        for connection in self.accepted:
            connection.close()


def add_client(conf, client_id, password, callback):
    """Open the database of `conf` (as the LMS does on first start) and add
    a client to its LMS site; for benchmarks that need one."""
    import transaction
    import zope.component.hooks
    import gocept.lms.client
    import gocept.lms.scripts
    import gocept.lms.settings
    from gocept.lms.interfaces import IClientProvider
    db = gocept.lms.scripts.open_database(conf, quiet=True)
    connection = db.open()
    try:
        zope.component.hooks.setSite(connection.root()['Application']['lms'])
        client = gocept.lms.client.Client(client_id)
        client.set_password(
            password, gocept.lms.settings.get().secret_key_file)
        client.callback = callback
        zope.component.getUtility(IClientProvider).add(client)
        transaction.commit()
    finally:
        zope.component.hooks.setSite(None)
        connection.close()
        db.close()
