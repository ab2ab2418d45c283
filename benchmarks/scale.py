"""Benchmark: how the LMS scales with the number of URLs.

Run from the checkout after buildout:

    bin/py benchmarks/scale.py                         # 10k, 100k, 1M URLs
    bin/py benchmarks/scale.py --sizes 10000,100000
    bin/py benchmarks/scale.py --sizes 10000 --keep    # keep the work dir

For each size: a fresh FileStorage filled in-process (1,000 clients, URLs
on 10,000 hosts, each URL subscribed by one client and every tenth by a
second one, commits of at most --batch URLs, all URLs due), packed; then a
real ZEO server (bin/runzeo) over it, bin/web, bin/checker --once and
bin/sync --force as separate processes, and this process as the XML-RPC
client. Measured:

- packed Data.fs bytes per URL;
- registerURLs over XML-RPC: 100 calls of 100 new URLs, 1 call of 10,000
  new URLs (one client): Data.fs growth per new URL, new URLs/s;
- the first GET of /lms/@@metrics on a freshly started bin/web, all URLs
  due, with a monitoring login (role gocept.lms.Monitor);
- the checker's write path in-process against ZEO (checkerdb.DatabaseWork's
  claim and write, as bin/checker uses them): 20,000 results in batches
  of check-write-size (its default), check order unrelated to key order (the most overdue URLs
  after every URL got a random next check), once results that change
  nothing (ok stays ok), once results that change the state (ok becomes
  temporary unavailable); Data.fs growth per result, results/s; and
  what the claims before them wrote per claimed URL (each check has one);
- peak RSS of bin/web after the calls, of bin/checker over a full round
  (with its RSS at a quarter, half, three quarters and the end of the
  round, to show it stays flat), of bin/sync --force over all clients.

Network: everything on 127.0.0.0/8, no name is ever resolved. bin/checker
has no way to replace its resolver (it would look names up in real DNS),
so the URLs' hosts are not names but 127.0.1.1 to 127.0.1.250 with 40
ports each (10,000 host:port pairs), where a small HTTP server of this
script answers 200 at once; the checker configuration allow-lists
127.0.1.0/24. As the 10,000 pairs share 250 addresses, and the checker
paces by address, it runs with pacing off (`--checker-rate` to change
that). URLs are 50 to 100 characters, like
http://127.0.1.17:21003/news/archive/products/report-4711.html. The
clients' callbacks are one XML-RPC server on 127.0.0.1 in its own process.

Run time on 2 busy cores: about 1 minute for 10,000 URLs, 2.5 minutes for
100,000; 1,000,000 should take roughly 20 to 30 minutes (the fill, the
write path's preparation and the checker round each touch every URL) and
needs a few GB in the work directory.

Figures go to stdout as a table; nothing is written to RESULTS.md. Every
phase runs in its own process (the fill, the write path, the servers), so
each process's RSS is its own.
"""

import argparse
import asyncio
import base64
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import xmlrpc.client

import gocept.lms.tests.processes


HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(HERE)
BIN = os.path.join(CHECKOUT, 'bin')

SITE = 'lms'
LOOPBACK_IPS = ['127.0.1.%d' % n for n in range(1, 251)]
MONITOR = ('monitor', 'monitorpw')
RPC_SMALL = (100, 100)      # calls, URLs per call
RPC_LARGE = (1, 10000)
WRITE_RESULTS = 20000
SHARED_EVERY = 10           # every 10th URL of a client has a 2nd client

WORDS = (
    'news blog products services about team press events archive docs '
    'support downloads reports research article category en de fr shop '
    'catalog item gallery media library policy guide faq help contact '
    'careers partners projects wiki forum topics tags 2019 2020 2021 2022 '
    '2023 2024 2025 index static assets content pages public member '
    'community report annual summary overview detail').split()


# --- the data set -----------------------------------------------------------
#
# Deterministic from (size, clients, hosts, port base): the fill, the
# callback server and the write path generate the same strings.

class DataSet:

    def __init__(self, size, clients, hosts, port_base):
        self.size = size
        self.clients = clients
        self.hosts = hosts
        self.port_base = port_base

    def client_id(self, c):
        return 'client%04d' % c

    def password(self, c):
        return 'pw-%04d' % c

    def host(self, h):
        return '%s:%d' % (LOOPBACK_IPS[h % len(LOOPBACK_IPS)],
                          self.port_base + h // len(LOOPBACK_IPS))

    def _share(self, c):
        per, extra = divmod(self.size, self.clients)
        return c * per + min(c, extra), per + (1 if c < extra else 0)

    def _generate(self, seed, start, count, home):
        rnd = random.Random(str(seed))
        result = []
        for n in range(start, start + count):
            # Half a client's links go to a few sites of its own, the rest
            # anywhere.
            if rnd.random() < 0.5:
                h = rnd.choice(home)
            else:
                h = rnd.randrange(self.hosts)
            prefix = 'http://%s/' % self.host(h)
            tail = '%s-%d.html' % (rnd.choice(WORDS), n)
            if rnd.random() < 0.2:
                tail += '?page=%d' % rnd.randrange(1, 50)
            target = rnd.randint(50, 100)
            parts = []
            length = len(prefix) + len(tail)
            misses = 0
            while misses < 5:
                word = rnd.choice(WORDS)
                if length + len(word) + 1 > target:
                    misses += 1
                    continue
                parts.append(word + '/')
                length += len(word) + 1
            result.append(prefix + ''.join(parts) + tail)
        return result

    def _home(self, c):
        return [(c * 37 + k * 1009) % self.hosts for k in range(5)]

    def own(self, c):
        """The URLs client `c` is the first subscriber of."""
        start, count = self._share(c)
        return self._generate(('own', c), start, count, self._home(c))

    def shared(self, c):
        """URLs of the previous client that client `c` subscribes too."""
        return self.own((c - 1) % self.clients)[::SHARED_EVERY]

    def rpc(self, tag, count):
        """New URLs for the XML-RPC calls (client 0), distinct per tag."""
        offset = {'small': 0, 'large': 1}[tag] * 10 ** 7
        return self._generate(('rpc', tag), self.size + 10 ** 7 + offset,
                              count, self._home(0))

    def links(self, c):
        """What client `c`'s callback answers getAllLinks with (after the
        XML-RPC calls, which subscribe client 0 to more URLs)."""
        result = self.own(c) + self.shared(c)
        if c == 0:
            result += self.rpc('small', RPC_SMALL[0] * RPC_SMALL[1])
            result += self.rpc('large', RPC_LARGE[0] * RPC_LARGE[1])
        return result

    def as_args(self):
        return ['--size', str(self.size), '--clients', str(self.clients),
                '--hosts', str(self.hosts), '--port-base',
                str(self.port_base)]

    @classmethod
    def from_args(cls, args):
        return cls(args.size, args.clients, args.hosts, args.port_base)


# --- roles: each runs as `bin/py scale.py --role ROLE` ----------------------

def open_site(conf, filestorage=None):
    import zope.component.hooks
    import gocept.lms.scripts
    db = gocept.lms.scripts.open_database(conf, filestorage, quiet=True)
    connection = db.open()
    site = connection.root()['Application'][SITE]
    zope.component.hooks.setSite(site)
    return db, connection


def role_fill(args):
    """Fill a fresh FileStorage, pack it; print figures as JSON."""
    import transaction
    import zope.component
    import gocept.lms.client
    import gocept.lms.settings
    from gocept.lms.interfaces import IClientProvider, IURLProvider
    data = DataSet.from_args(args)
    started = time.perf_counter()
    db, connection = open_site(args.conf, args.filestorage)
    clients = zope.component.getUtility(IClientProvider)
    urls = zope.component.getUtility(IURLProvider)
    key_file = gocept.lms.settings.get().secret_key_file
    for c in range(data.clients):
        client = gocept.lms.client.Client(data.client_id(c))
        client.set_password(data.password(c), key_file)
        client.callback = args.callback
        clients.add(client)
    transaction.commit()
    commits, in_txn, subscriptions = 1, 0, 0
    for c in range(data.clients):
        client = clients[data.client_id(c)]
        for strings in (data.own(c), data.shared(c)):
            keys = urls.add_ids(strings)
            client.register_urls([urls.by_id(key) for key in keys])
            in_txn += len(strings)
            subscriptions += len(keys)
        if in_txn >= args.batch:
            transaction.commit()
            commits += 1
            in_txn = 0
    transaction.commit()
    filled = time.perf_counter() - started
    count = len(urls)
    connection.close()
    unpacked = os.path.getsize(args.filestorage)
    started = time.perf_counter()
    db.pack()
    packed_in = time.perf_counter() - started
    db.close()
    print(json.dumps(dict(
        seconds=filled, pack_seconds=packed_in, urls=count,
        subscriptions=subscriptions, commits=commits,
        unpacked=unpacked, packed=os.path.getsize(args.filestorage))))


def role_write(args):
    """The checker's write path (checkerdb.DatabaseWork) against ZEO.

    As bin/checker does it: claim due URLs (`claim`), write their
    results in batches (`write`), each batch within one claim, the
    results of a claim in random order. Claims are not timed.

    `--variant day` writes ok to every URL once, checked now and due again
    a day later (growth.py's day of checks).

    `--variant prepare` claims every due URL and writes ok with a random
    next check in the past: afterwards the most overdue URLs are a random
    choice of keys, as on a site that has been checked for a while, and
    every URL is still due for the checker round. `same` then writes ok
    again to the 20,000 most overdue (nothing changes), `change` writes
    "connection refused" (ok becomes temporary unavailable). Their next
    checks stay in the past too.
    """
    import gocept.lms.checkerdb
    import gocept.lms.scripts
    from gocept.lms.checking import policy
    db = gocept.lms.scripts.open_database(args.conf, quiet=True)
    work = gocept.lms.checkerdb.DatabaseWork(db)
    batch_size = work.settings.check_write_size
    rnd = random.Random(str((args.variant, args.size)))
    outcome = (policy.Outcome(policy.KIND_REFUSED, 'connection refused')
               if args.variant == 'change'
               else policy.Outcome(policy.KIND_HTTP, '200 OK', 200))

    def results(keys, checked):
        """Results of checks that ended at `checked` (epoch seconds)."""
        decision = policy.decide(outcome, None, checked)
        when = datetime.datetime.fromtimestamp(checked, datetime.timezone.utc)
        return [policy.Result(
            key, decision.state, decision.reason, decision.next_check,
            decision.history, when) for key in keys]

    def claims(limit):
        """[(until, keys, shard numbers)], as bin/checker keeps them."""
        got, count = [], 0
        while limit is None or count < limit:
            until, items, shards = work.claim(SITE)
            if not items:
                break
            placed = [(item[0], shard) for item, shard in zip(items, shards)]
            rnd.shuffle(placed)   # results come in the order checks finish
            got.append((until, [key for key, _ in placed],
                        [shard for _, shard in placed]))
            count += len(placed)
        return got

    if args.variant in ('prepare', 'day'):
        # Every URL is written once. `day` (growth.py) checks now, due
        # again tomorrow: then nothing is due. `prepare` leaves what it
        # wrote due, and the schedule's shards bring such URLs back before
        # the last new ones: a URL claimed a second time is left claimed
        # (its lease keeps it out of the claims that follow), not written
        # again. Without that, `same` and `change` would find URLs never
        # checked and measure their first state change.
        written, seen = 0, set()
        while len(seen) < args.size:
            got = claims(1)
            if not got:
                break
            until, keys, shards = got[0]
            shard_of = dict(zip(keys, shards))
            keys = [key for key in keys if key not in seen]
            seen.update(keys)
            for i in range(0, len(keys), batch_size):
                batch = []
                for key in keys[i:i + batch_size]:
                    if args.variant == 'day':
                        checked = time.time()
                    else:
                        # last checked 2 to 3 days ago: due again a day
                        # later
                        checked = (time.time() - 3 * 86400
                                   + rnd.random() * 86400)
                    batch.extend(results([key], checked))
                work.write(SITE, until, batch,
                           [shard_of[r.key] for r in batch])
                written += len(batch)
        db.close()
        print(json.dumps(dict(results=written)))
        return

    # What the claims wrote is reported apart: each check has one.
    before_claims = os.path.getsize(args.filestorage)
    started = time.perf_counter()
    got = claims(WRITE_RESULTS)
    claim_seconds = time.perf_counter() - started
    before = os.path.getsize(args.filestorage)
    started = time.perf_counter()
    written = 0
    for until, keys, shards in got:
        for i in range(0, len(keys), batch_size):
            # checked "now" a day ago: the next check is due already
            batch = results(keys[i:i + batch_size],
                            time.time() - 86400 - 600)
            work.write(SITE, until, batch, shards[i:i + batch_size])
            written += len(batch)
    seconds = time.perf_counter() - started
    after = os.path.getsize(args.filestorage)
    db.close()
    print(json.dumps(dict(results=written, seconds=seconds,
                          grown=after - before,
                          claimed=sum(len(got_keys)
                                      for until, got_keys, shards in got),
                          claims_grown=before - before_claims,
                          claim_seconds=claim_seconds)))


def role_callback(args):
    """The clients' XML-RPC callbacks: one server for all of them."""
    import xmlrpc.server
    data = DataSet.from_args(args)
    ids = {data.client_id(c): c for c in range(data.clients)}

    class Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
        rpc_paths = ('/db/',)

    def authenticated(client_id, password):
        c = ids.get(client_id)
        if c is None or password != data.password(c):
            raise ValueError('wrong credentials for %r' % client_id)
        return c

    def xmlrpc_getAllLinks(client_id, password):
        return data.links(authenticated(client_id, password))

    def updateManyStates(client_id, password, states):
        authenticated(client_id, password)
        return True

    server = xmlrpc.server.SimpleXMLRPCServer(
        ('127.0.0.1', 0), requestHandler=Handler, logRequests=False)
    for f in (xmlrpc_getAllLinks, updateManyStates):
        server.register_function(f)
    print(server.server_address[1], flush=True)
    server.serve_forever()


ANSWER = (b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
          b'Content-Length: 2\r\nConnection: close\r\n\r\n')


class Answer200(asyncio.Protocol):
    """200 to every request, then close: no idle keep-alive connections
    pile up over 10,000 host:port pairs."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b''

    def data_received(self, data):
        self.buffer += data
        if b'\r\n\r\n' in self.buffer:
            head = b'' if self.buffer.startswith(b'HEAD') else b'ok'
            self.transport.write(ANSWER + head)
            self.transport.close()


async def serve_http(hosts):
    loop = asyncio.get_running_loop()
    ports = -(-hosts // len(LOOPBACK_IPS))
    rnd = random.Random()
    for _ in range(20):
        # below the ephemeral range (32768-60999), 5 digits
        base = rnd.randrange(20000, 32000 - ports)
        servers = []
        try:
            for port in range(base, base + ports):
                servers.append(await loop.create_server(
                    Answer200, host=LOOPBACK_IPS, port=port,
                    reuse_address=False, backlog=256))
        except OSError:
            for server in servers:
                server.close()
            continue
        print(base, flush=True)
        await asyncio.Event().wait()
    raise SystemExit('no free block of %d ports on 127.0.1.x' % ports)


def role_httpd(args):
    asyncio.run(serve_http(args.hosts))


ROLES = {'fill': role_fill, 'write': role_write, 'callback': role_callback,
         'httpd': role_httpd}


# --- the processes --------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError('%s exited with %s' % (process.args[0],
                                                      process.returncode))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('nothing listens on 127.0.0.1:%d' % port)


def is_resource_tracker(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            return b'resource_tracker' in f.read()
    except OSError:
        return False


def proc_status(pid):
    """VmRSS and VmHWM of a process in MiB (None once it is gone)."""
    figures = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(('VmRSS:', 'VmHWM:')):
                    key, value = line.split(':')
                    figures[key] = int(value.split()[0]) / 1024
    except OSError:
        return None
    return figures


def stop(process, timeout=60):
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def role_process(role, data, *extra):
    return [os.path.join(BIN, 'py'), os.path.abspath(__file__),
            '--role', role] + data.as_args() + list(extra)


def run_role(role, data, cwd, *extra):
    result = subprocess.run(role_process(role, data, *extra),
                            capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError('role %s failed:\n%s'
                           % (role, result.stderr[-4000:]))
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_measured(cmd, cwd, log_path, on_line=None):
    """Run cmd; return (wall seconds, peak RSS MiB from wait4, returncode).

    `on_line(line, pid)` sees every line of its stderr as it comes.
    """
    started = time.perf_counter()
    log = open(log_path, 'w')
    process = subprocess.Popen(cmd, cwd=cwd, stdout=log,
                               stderr=subprocess.PIPE, text=True)

    def read():
        for line in process.stderr:
            log.write(line)
            if on_line is not None:
                on_line(line, process.pid)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    reader.join(30)
    log.close()
    return wall, usage.ru_maxrss / 1024, process.returncode



ZEO_CONF = '''\
<zeo>
  address 127.0.0.1:{port}
</zeo>
<filestorage 1>
  path {datafs}
  pack-gc true
</filestorage>
<eventlog>
  level WARNING
  <logfile>
    path STDOUT
  </logfile>
</eventlog>
'''

PHASES = 'xmlrpc,metrics,write_path,checker,sync'



class Run:
    """One size: its work directory, processes and figures."""

    def __init__(self, size, args):
        self.args = args
        self.size = size
        self.tmp = tempfile.mkdtemp(prefix='lms-bench-scale-%d-' % size,
                                    dir=args.workdir)
        self.datafs = os.path.join(self.tmp, 'Data.fs')
        self.zeo_port = free_port()
        self.web_port = free_port()
        self.figures = {'urls': size, 'clients': args.clients}
        self.phases = self.figures['phases'] = {}
        self.processes = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def phase(self, name, started):
        self.phases[name] = time.perf_counter() - started
        print('  %-28s %7.1f s' % (name, self.phases[name]),
              file=sys.stderr, flush=True)

    def write_configuration(self):
        processes = gocept.lms.tests.processes
        site_zcml = processes.write_monitor_site_zcml(self.tmp, *MONITOR)
        with open(self.path('zeo.conf'), 'w') as f:
            f.write(ZEO_CONF.format(port=self.zeo_port, datafs=self.datafs))
        product = {
            'site-name': SITE,
            'http-address': '127.0.0.1:%d' % self.web_port,
            'public-url': 'http://127.0.0.1:%d/lms/' % self.web_port,
            'secret-key-file': self.path('secret.key'),
            'mail-queue': self.path('mailqueue'),
            'check-stats-file': self.path('checker-stats.json'),
            'checker-allow-cidrs': '127.0.1.0/24',
            'checker-per-host-rate': str(self.args.checker_rate),
        }
        self.conf = processes.write_zope_conf(
            self.tmp, self.zeo_port, product, site_zcml)

    def start(self, cmd, log_name, **kw):
        log = open(self.path(log_name), 'wb')
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=self.tmp, **kw)
        process.log = log
        self.processes.append(process)
        return process

    def start_reading(self, cmd):
        """Start a helper server that prints its port (or base) first."""
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                   cwd=self.tmp)
        self.processes.append(process)
        line = process.stdout.readline()
        if not line:
            raise RuntimeError('%s did not start' % ' '.join(cmd[2:4]))
        return process, int(line)

    def stop_all(self):
        for process in reversed(self.processes):
            stop(process)
            if getattr(process, 'log', None):
                process.log.close()
        self.processes = []

    def run(self):
        try:
            self._run()
        finally:
            self.stop_all()
            if not self.args.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                print('  kept %s' % self.tmp, file=sys.stderr)
        return self.figures

    def _run(self):
        args, fig = self.args, self.figures
        everything = time.perf_counter()

        # the web sites the URLs point to, and the clients' callbacks
        self.httpd, port_base = self.start_reading(role_process(
            'httpd', DataSet(0, 1, args.hosts, 0)))
        self.data = data = DataSet(self.size, args.clients, args.hosts,
                                   port_base)
        self.callback, callback_port = self.start_reading(
            role_process('callback', data))
        callback_url = 'http://127.0.0.1:%d/db/' % callback_port
        self.write_configuration()

        started = time.perf_counter()
        fill = run_role('fill', data, self.tmp, '--conf', self.conf,
                        '--filestorage', self.datafs,
                        '--callback', callback_url,
                        '--batch', str(args.batch))
        if os.path.exists(self.datafs + '.old'):
            os.remove(self.datafs + '.old')
        self.phase('fill and pack', started)
        fig['fill_urls_per_s'] = fill['urls'] / fill['seconds']
        fig['fill_seconds'] = fill['seconds']
        fig['pack_seconds'] = fill['pack_seconds']
        fig['stored_urls'] = fill['urls']
        fig['subscriptions'] = fill['subscriptions']
        fig['unpacked_mb'] = fill['unpacked'] / 2 ** 20
        fig['packed_mb'] = fill['packed'] / 2 ** 20
        fig['packed_bytes_per_url'] = fill['packed'] / fill['urls']

        self.zeo = self.start(
            [os.path.join(BIN, 'runzeo'), '-C', self.path('zeo.conf')],
            'zeo.log')
        wait_for_port(self.zeo_port, self.zeo)

        # A phase that fails (the model is being rewritten) is reported;
        # the others still run.
        for name, work in [('XML-RPC calls', self.xmlrpc),
                           ('@@metrics on a fresh web', self.metrics),
                           ('write path', self.write_path),
                           ('checker round', self.checker),
                           ('sync of all clients', self.sync)]:
            if work.__name__ not in args.phases.split(','):
                continue
            started = time.perf_counter()
            try:
                work()
            except Exception as e:
                lines = str(e).strip().splitlines() or [repr(e)]
                fig.setdefault('errors', {})[name] = '%s: %s' % (
                    type(e).__name__, lines[-1])
                print('  %s failed:' % name, file=sys.stderr)
                traceback.print_exc()
            self.phase(name, started)

        fig['datafs_end_mb'] = os.path.getsize(self.datafs) / 2 ** 20
        fig['total_seconds'] = time.perf_counter() - everything

    def start_web(self, log_name):
        web = self.start([os.path.join(BIN, 'web'), '-C', self.conf],
                         log_name)
        wait_for_port(self.web_port, web)
        return web

    def xmlrpc(self):
        fig, data = self.figures, self.data
        web = self.start_web('web-xmlrpc.log')
        proxy = xmlrpc.client.ServerProxy(
            'http://127.0.0.1:%d/lms/' % self.web_port)
        client = (data.client_id(0), data.password(0))
        assert proxy.checkConnection(*client) == 2
        for tag, (calls, per_call) in (('small', RPC_SMALL),
                                       ('large', RPC_LARGE)):
            urls = data.rpc(tag, calls * per_call)
            batches = [urls[i:i + per_call]
                       for i in range(0, len(urls), per_call)]
            before = os.path.getsize(self.datafs)
            started = time.perf_counter()
            for batch in batches:
                answer = proxy.registerURLs(client[0], client[1], batch)
                assert answer == [], answer[:3]
            seconds = time.perf_counter() - started
            grown = os.path.getsize(self.datafs) - before
            fig['rpc_%s_urls_per_s' % tag] = len(urls) / seconds
            fig['rpc_%s_bytes_per_url' % tag] = grown / len(urls)
        proxy('close')()
        status = proc_status(web.pid)
        fig['web_rss_mb'] = status['VmRSS']
        fig['web_peak_mb'] = status['VmHWM']
        stop(web)

    def metrics(self):
        fig = self.figures
        web = self.start_web('web-metrics.log')
        url = 'http://127.0.0.1:%d/lms/@@metrics' % self.web_port
        auth = 'Basic ' + base64.b64encode(
            ('%s:%s' % MONITOR).encode()).decode()
        timings = []
        for _ in range(2):
            request = urllib.request.Request(
                url, headers={'Authorization': auth})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                body = response.read().decode()
            timings.append(time.perf_counter() - started)
        figures = dict(re.findall(r'^(lms_urls|lms_check_backlog) (\d+)$',
                                  body, re.M))
        fig['metrics_first_s'], fig['metrics_second_s'] = timings
        fig['metrics_urls'] = int(figures['lms_urls'])
        fig['metrics_backlog'] = int(figures['lms_check_backlog'])
        fig['metrics_web_peak_mb'] = proc_status(web.pid)['VmHWM']
        stop(web)
        # Once more on a fresh process, after one request of another
        # monitoring view: the login and the process's first request are
        # paid there, and the timed request reads the figures from a cold
        # object cache.
        web = self.start_web('web-metrics-2.log')
        for path in ('@@munin-threadpool', '@@metrics'):
            request = urllib.request.Request(
                'http://127.0.0.1:%d/lms/%s' % (self.web_port, path),
                headers={'Authorization': auth})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=600) as response:
                response.read()
            fig['metrics_after_warmup_s'] = time.perf_counter() - started
        stop(web)

    def write_path(self):
        fig, data = self.figures, self.data
        common = ['--conf', self.conf, '--filestorage', self.datafs]
        started = time.perf_counter()
        prepared = run_role('write', data, self.tmp, '--variant', 'prepare',
                            *common)
        fig['write_prepared'] = prepared['results']
        fig['write_prepare_s'] = time.perf_counter() - started
        for variant in ('same', 'change'):
            result = run_role('write', data, self.tmp, '--variant', variant,
                              *common)
            fig['write_%s_per_s' % variant] = (
                result['results'] / result['seconds'])
            fig['write_%s_bytes' % variant] = (
                result['grown'] / result['results'])
            fig['write_%s_results' % variant] = result['results']
            fig['write_%s_claim_bytes' % variant] = (
                result['claims_grown'] / result['claimed'])
            fig['write_%s_claims_per_s' % variant] = (
                result['claimed'] / result['claim_seconds'])

    def checker(self):
        fig = self.figures
        due = fig['stored_urls'] + RPC_SMALL[0] * RPC_SMALL[1] + \
            RPC_LARGE[0] * RPC_LARGE[1]
        # (URLs checked, VmRSS MiB of the checks' process, of its
        # database process)
        samples = []
        database_peak = [0.0]
        # bin/checker's progress and final lines (checker.Stats):
        # "N URLs checked, R/s in B s busy (W s running): states"
        progress = re.compile(r' (\d+) URLs checked, ')

        def on_line(line, pid):
            m = progress.search(line)
            if m:
                status = proc_status(pid)
                # The database process only: multiprocessing's resource
                # tracker (12 MiB, flat) is a child of bin/checker too.
                children = [proc_status(c) for c in
                            gocept.lms.tests.processes.child_pids(pid)
                            if not is_resource_tracker(c)]
                child = sum(c['VmRSS'] for c in children if c)
                database_peak[0] = max([database_peak[0]] + [
                    c['VmHWM'] for c in children if c])
                if status:
                    samples.append((int(m.group(1)), status['VmRSS'], child))

        before = os.path.getsize(self.datafs)
        wall, peak, code = run_measured(
            [os.path.join(BIN, 'checker'), '-C', self.conf, '--once'],
            self.tmp, self.path('checker.log'), on_line)
        if code != 0:
            raise RuntimeError('bin/checker failed, see %s'
                               % self.path('checker.log'))
        with open(self.path('checker.log')) as f:
            log = f.read()
        done = re.findall(r'checker done: (\d+) URLs checked, [\d.]+/s in '
                          r'([\d.]+) s busy \([\d.]+ s running\): (.*)', log)
        checked, seconds, states = done[-1]
        fig['checker_checked'] = int(checked)
        # Claims and writes together. After the write path's phase every
        # URL was checked once and most checks change nothing; without it,
        # this is the first round and nearly every check changes a state.
        fig['checker_bytes_per_check'] = (
            os.path.getsize(self.datafs) - before) / max(int(checked), 1)
        fig['checker_due'] = due
        fig['checker_per_s'] = int(checked) / float(seconds)
        fig['checker_wall'] = wall
        fig['checker_states'] = states
        fig['checker_peak_mb'] = peak
        fig['checker_database_peak_mb'] = database_peak[0]
        points = {}
        for share in (0.25, 0.5, 0.75):
            for count, rss, child in samples:
                if count >= share * int(checked):
                    points[share] = (rss, child)
                    break
        if samples:
            points[1.0] = samples[-1][1:]
        fig['checker_rss_points'] = points

    def sync(self):
        fig = self.figures
        wall, peak, code = run_measured(
            [os.path.join(BIN, 'sync'), '-C', self.conf, '--force'],
            self.tmp, self.path('sync.log'))
        with open(self.path('sync.log')) as f:
            log = f.read()
        if code != 0:
            raise RuntimeError('bin/sync failed (%d): %s'
                               % (code, log[-3000:]))
        m = re.search(r'sync of \S+ done: (\d+) clients synced, (\d+) failed, '
                      r'(\d+) URLs added, (\d+) removed, (\d+) states sent',
                      log)
        fig['sync_clients'], fig['sync_failed'], fig['sync_added'], \
            fig['sync_removed'], fig['sync_states'] = map(int, m.groups())
        fig['sync_wall'] = wall
        fig['sync_peak_mb'] = peak


# --- the report -------------------------------------------------------------

ROWS = [
    ('URLs filled (subscriptions)',
     lambda f: '%s (%s)' % (n(f['stored_urls']), n(f['subscriptions']))),
    ('fill in-process, URLs/s', lambda f: n(f['fill_urls_per_s'])),
    ('Data.fs before / after pack, MB',
     lambda f: '%.1f / %.1f' % (f['unpacked_mb'], f['packed_mb'])),
    ('**packed bytes per URL**', lambda f: n(f['packed_bytes_per_url'])),
    ('registerURLs 100 x 100 new: URLs/s',
     lambda f: n(f['rpc_small_urls_per_s'])),
    ('registerURLs 100 x 100 new: bytes/URL',
     lambda f: n(f['rpc_small_bytes_per_url'])),
    ('registerURLs 1 x 10,000 new: URLs/s',
     lambda f: n(f['rpc_large_urls_per_s'])),
    ('registerURLs 1 x 10,000 new: bytes/URL',
     lambda f: n(f['rpc_large_bytes_per_url'])),
    ('bin/web RSS / peak after the calls, MiB',
     lambda f: '%.0f / %.0f' % (f['web_rss_mb'], f['web_peak_mb'])),
    ('@@metrics, first GET on a fresh bin/web, s',
     lambda f: '%.3f' % f['metrics_first_s']),
    ('@@metrics, second GET, s', lambda f: '%.3f' % f['metrics_second_s']),
    ('@@metrics on a fresh bin/web after one other request, s',
     lambda f: '%.3f' % f['metrics_after_warmup_s']),
    ('fresh bin/web peak RSS after @@metrics, MiB',
     lambda f: '%.0f' % f['metrics_web_peak_mb']),
    ('@@metrics says: URLs / backlog',
     lambda f: '%s / %s' % (n(f['metrics_urls']), n(f['metrics_backlog']))),
    ('write path, ok stays ok: results/s', lambda f: n(f['write_same_per_s'])),
    ('write path, ok stays ok: bytes/result',
     lambda f: n(f['write_same_bytes'])),
    ('write path, state changes: results/s',
     lambda f: n(f['write_change_per_s'])),
    ('write path, state changes: bytes/result',
     lambda f: n(f['write_change_bytes'])),
    ('write path, claims before the results: bytes/claimed URL',
     lambda f: n(f['write_same_claim_bytes'])),
    ('write path, claims of the most overdue URLs: claimed URLs/s',
     lambda f: n(f['write_same_claims_per_s'])),
    ('bin/checker --once: URLs checked (due)',
     lambda f: '%s (%s)' % (n(f['checker_checked']), n(f['checker_due']))),
    ('bin/checker --once: bytes written per check (claim and write)',
     lambda f: n(f['checker_bytes_per_check'])),
    ('bin/checker --once: URLs/s, wall s',
     lambda f: '%s, %.0f' % (n(f['checker_per_s']), f['checker_wall'])),
    ('bin/checker RSS at 25/50/75/100%, MiB (checks + database)',
     lambda f: ' / '.join('%.0f+%.0f' % f['checker_rss_points'].get(p, (0, 0))
                          for p in (0.25, 0.5, 0.75, 1.0))),
    # wait4's figure covers the descendants bin/checker waited for: the
    # larger of its two processes.
    ('**bin/checker peak RSS, MiB (larger process, database process)**',
     lambda f: '%.0f, %.0f' % (f['checker_peak_mb'],
                               f['checker_database_peak_mb'])),
    ('bin/sync --force: clients, states sent',
     lambda f: '%s, %s' % (n(f['sync_clients']), n(f['sync_states']))),
    ('bin/sync --force: added / removed / failed',
     lambda f: '%d / %d / %d' % (f['sync_added'], f['sync_removed'],
                                 f['sync_failed'])),
    ('bin/sync --force: wall s', lambda f: '%.1f' % f['sync_wall']),
    ('**bin/sync peak RSS, MiB**', lambda f: '%.0f' % f['sync_peak_mb']),
    ('Data.fs at the end, MB', lambda f: '%.1f' % f['datafs_end_mb']),
    ('run time of this size, s', lambda f: '%.0f' % f['total_seconds']),
]


def n(value):
    return '{:,.0f}'.format(value)


def report(results, args):
    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print('%d clients, %d host:port pairs on 127.0.1.1-250, fill commits of '
          '%s URLs, checker per-host rate %s (0: pacing off)'
          % (args.clients, args.hosts, n(args.batch), args.checker_rate))
    print()
    sizes = sorted(results)
    print('| figure | ' + ' | '.join(n(s) + ' URLs' for s in sizes) + ' |')
    print('|---|' + '---|' * len(sizes))
    for title, cell in ROWS:
        cells = []
        for size in sizes:
            try:
                cells.append(cell(results[size]))
            except (KeyError, TypeError):
                cells.append('-')
        print('| %s | %s |' % (title, ' | '.join(cells)))
    print()
    for size in sizes:
        f = results[size]
        print('%s URLs: checker states: %s; write path: %s; phases: %s' % (
            n(size), f.get('checker_states', '-'),
            '%s URLs prepared in %.0f s, %s + %s results measured' % (
                n(f.get('write_prepared', 0)), f.get('write_prepare_s', 0),
                n(f.get('write_same_results', 0)),
                n(f.get('write_change_results', 0))),
            ', '.join('%s %.0f s' % item
                      for item in f.get('phases', {}).items())))
        for phase, error in f.get('errors', {}).items():
            print('%s URLs: %s FAILED: %s' % (n(size), phase, error))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='10000,100000,1000000',
                        help='comma separated URL counts '
                             '(default: %(default)s)')
    parser.add_argument('--phases', default=PHASES,
                        help='which phases run after the fill (default: '
                             '%(default)s)')
    parser.add_argument('--clients', type=int, default=1000)
    parser.add_argument('--hosts', type=int, default=10000,
                        help='host:port pairs the URLs point to')
    parser.add_argument('--batch', type=int, default=10000,
                        help='URLs per commit of the fill')
    parser.add_argument('--checker-rate', default='0',
                        help='checker-per-host-rate (requests per second '
                             'and host IP; 0: pacing off, the default, as '
                             'the 10,000 pairs share 250 addresses)')
    parser.add_argument('--workdir', default=None,
                        help='where the work directories go (default: '
                             'the system temp directory)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directories (Data.fs, logs)')
    # internal: the roles run in processes of their own
    parser.add_argument('--role', choices=sorted(ROLES),
                        help=argparse.SUPPRESS)
    parser.add_argument('--size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--port-base', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--conf', help=argparse.SUPPRESS)
    parser.add_argument('--filestorage', help=argparse.SUPPRESS)
    parser.add_argument('--callback', help=argparse.SUPPRESS)
    parser.add_argument('--variant', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return ROLES[args.role](args)

    sizes = [int(s.replace('_', '')) for s in args.sizes.split(',') if s]
    results = {}
    for size in sizes:
        print('%s URLs:' % n(size), file=sys.stderr, flush=True)
        run = Run(size, args)
        try:
            results[size] = run.run()
        except Exception as e:
            traceback.print_exc()
            run.figures.setdefault('errors', {})['setup'] = '%s: %s' % (
                type(e).__name__, (str(e).strip().splitlines() or [''])[-1])
            results[size] = run.figures
    report(results, args)


if __name__ == '__main__':
    main()
