"""The whole LMS under concurrent load, as real processes.

Shared by ``test_concurrency.py`` (a short run in the test suite) and
``benchmarks/concurrency.py`` (a long run with a table). One run:

* the database: a ZEO server, or PostgreSQL (a server of its own, or the
  one given, with a new database); two ``bin/web`` on ports of their own,
  two ``bin/checker``, ``bin/notifier`` (each a process of its own; one
  that exits is counted and started again, as supervisord would), and
  ``bin/sync --force`` over and over;
* a web site to check on 127.0.1.1 to 127.0.1.4 (pages answering 200 and
  404), an SMTP sink for the registration mails;
* N clients, each a thread of this process, registered with
  ``registerClient`` and with its own XML-RPC callback on 127.0.0.1 that
  records ``updateManyStates`` and answers ``xmlrpc_getAllLinks`` with the
  client's current list; the clients take turns in which of the two web
  servers they call. For the duration of the load they register and
  unregister URLs (calls of `small` URLs and a few of `large`), some from
  a pool all clients share, some of their own, and read states now and
  then.

Then the load stops, the sync loop finishes its run, and the run looks at
what the clients got:

* every call that failed as the client saw it (a Fault, an HTTP error,
  any exception);
* every URL a client registered and did not unregister must be among its
  URLs in the LMS (``getURLStates``, and the count in ``listClients``),
  and no URL it unregistered may be left;
* after the checkers and the notifier settled, every URL of a client must
  have reached the client with the state ``getURLStates`` answers: by
  ``updateManyStates``, or in the answer of ``registerURLs`` (which is
  how the protocol hands out states the LMS knew already);
* the processes that exited, the ConflictErrors each process retried or
  gave up on (from their logs, and from ``@@metrics`` and the checkers'
  stats files where these have conflict counters), and the sync runs
  completed against those started.

Traffic goes to loopback addresses only; no name is ever looked up.
"""

import base64
import collections
import dataclasses
import http.client
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import xmlrpc.client

from gocept.lms.tests import processes
from gocept.lms.tests.processes import CallbackServer, WebServerThread
from gocept.lms.tests.servers import SMTPSink, password_from


ADMIN_SECRET = 'concurrency admin secret'
MONITOR_LOGIN = 'monitor'
MONITOR_PASSWORD = 'concurrency monitor password'
PAGE_HOSTS = ('127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4')
UNKNOWN = 'unknown'
# URLs per getURLStates call when the run reads a client's states
STATES_CHUNK = 5000
# The long-running processes, started again when they exit
SERVICES = ('web-1', 'web-2', 'checker-1', 'checker-2', 'notifier')
WEBS = tuple(name for name in SERVICES if name.startswith('web-'))
STORAGES = ('zeo', 'postgresql')


@dataclasses.dataclass
class Load:
    """What a run does; the defaults are the benchmark's."""

    clients: int = 20
    duration: float = 60.0            # seconds of load
    small: int = 50                   # URLs in an ordinary call
    large: int = 5000                 # URLs in a large call
    large_share: float = 0.02         # chance that a write call is large
    large_calls: int = 20             # at most this many large calls
    shared_pool: int = 10000          # URLs every client draws from
    shared_share: float = 0.5         # part of a registration from the pool
    broken_share: float = 0.1         # part of the URLs that answer 404
    think: float = 0.05               # mean pause of a client between calls
    sync_pause: float = 1.0           # pause between two bin/sync runs
    settle_timeout: float = 300.0     # most seconds to wait for settling
    stall: float = 60.0               # ... or for a new state to arrive
                                      # once every URL is checked
    check_lease: float = 1.0          # minutes (the checkers' lease)
    call_timeout: float = 300.0       # socket timeout of a client's call
    seed: int = 4711


# --- the web site the checkers check ---------------------------------------

class Pages:
    """URLs on the local page server: /ok answers 200, /missing 404."""

    def __init__(self, load, server):
        self.load = load
        self.server = server

    def url(self, tag, number):
        host = PAGE_HOSTS[number % len(PAGE_HOSTS)]
        broken = (number * 37) % 100 < self.load.broken_share * 100
        path = '/missing/%s' % tag if broken else '/ok?%s' % tag
        return self.server.url(path, host=host)

    def shared(self, number):
        return self.url('shared-%d' % number, number)

    def own(self, client_index, number):
        return self.url('client%d-%d' % (client_index, number), number)


# --- a client ----------------------------------------------------------------

class RecordingCallback(CallbackServer):
    """A client's callback: answers its current links, keeps the latest
    state it was told of each of them.

    `links` is the client's own list (its database). States for URLs the
    client no longer has are ignored, as a real client would.
    """

    def __init__(self, client_id):
        self.lock = threading.Lock()
        self.known = {}          # url -> (state, reason, how it came)
        self.pushed = 0          # states received by updateManyStates
        self.ignored = 0         # ... for URLs the client does not have
        self.batches = 0
        self.link_requests = 0
        self.answered = 0        # states taken from registerURLs answers
        self.credential_errors = 0
        super().__init__(client_id, None, set())

    def _auth(self, client_id, password):
        if (client_id, password) != (self.client_id, self.password):
            self.credential_errors += 1
            raise ValueError('wrong credentials')

    def xmlrpc_getAllLinks(self, client_id, password):
        self._auth(client_id, password)
        with self.lock:
            self.link_requests += 1
            return list(self.links)

    def updateManyStates(self, client_id, password, states):
        self._auth(client_id, password)
        with self.lock:
            self.batches += 1
            for url, state, reason in states:
                self.pushed += 1
                if url in self.links:
                    self.known[url] = (state, reason, 'updateManyStates')
                else:
                    self.ignored += 1
        return True

    def take_answer(self, rows):
        """The states a registerURLs call answered."""
        with self.lock:
            for url, state, reason in rows:
                if url in self.links:
                    self.answered += 1
                    self.known[url] = (state, reason, 'registerURLs')


class TimeoutTransport(xmlrpc.client.Transport):
    """With a socket timeout; an HTTP error keeps the Fault the LMS sent
    with it (the LMS answers an internal error with status 500 and a
    Fault saying what went wrong, which xmlrpc.client drops)."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection

    def single_request(self, host, handler, request_body, verbose=False):
        try:
            connection = self.send_request(host, handler, request_body,
                                           verbose)
            response = connection.getresponse()
            if response.status == 200:
                self.verbose = verbose
                return self.parse_response(response)
            body = response.read()
        except xmlrpc.client.Fault:
            raise
        except Exception:
            self.close()
            raise
        self.close()
        message = response.reason
        try:
            xmlrpc.client.loads(body)
        except xmlrpc.client.Fault as fault:
            message = '%s (%s)' % (message, describe(fault))
        except Exception:
            pass
        raise xmlrpc.client.ProtocolError(
            host + handler, response.status, message,
            dict(response.getheaders()))


def describe(error):
    if isinstance(error, xmlrpc.client.Fault):
        return 'Fault %s: %s' % (error.faultCode, error.faultString[:300])
    if isinstance(error, xmlrpc.client.ProtocolError):
        return 'HTTP %s %s' % (error.errcode, error.errmsg)
    return '%s: %s' % (type(error).__name__, str(error)[:300])


class LoadClient(threading.Thread):
    """One client site: registers, unregisters and reads URLs."""

    def __init__(self, run, index, client_id, password, callback):
        super().__init__(name='client-%s' % client_id, daemon=True)
        self.run_ = run
        self.load = run.load
        self.index = index
        self.client_id = client_id
        self.password = password
        self.callback = callback
        self.rng = random.Random(self.load.seed * 1000 + index)
        self.acked = set()       # registered and acknowledged, not removed
        self.touched = set()     # every URL ever sent in a write call
        # URLs of write calls that failed: whether the LMS has them is
        # unknown (a sync may have taken them from the client's list);
        # a later successful call settles them
        self.uncertain = set()
        self.calls = collections.Counter()
        self.urls_sent = collections.Counter()
        self.errors = []
        self.next_own = 0
        self.proxy = self._proxy()

    def _proxy(self):
        return xmlrpc.client.ServerProxy(
            self.run_.lms_urls[self.index % len(self.run_.lms_urls)],
            transport=TimeoutTransport(
                self.load.call_timeout))

    @property
    def links(self):
        return self.callback.links

    def call(self, method, *args, expect=None):
        """Call the LMS; return (ok, answer). Failures are recorded."""
        self.calls[method] += 1
        if args and isinstance(args[0], list):
            self.urls_sent[method] += len(args[0])
        try:
            answer = getattr(self.proxy, method)(
                self.client_id, self.password, *args)
        except Exception as error:
            self.errors.append((method, describe(error)))
            if not isinstance(error, xmlrpc.client.Fault):
                # the connection may be half used; start afresh
                self.proxy = self._proxy()
            return False, None
        if expect is not None and not expect(answer):
            self.errors.append((method, 'unexpected answer %r'
                                % (repr(answer)[:200],)))
            return False, None
        return True, answer

    def run(self):
        deadline = self.run_.load_deadline
        while (time.monotonic() < deadline
               and not self.run_.stopping.is_set()):
            try:
                self.step()
            except Exception as error:  # a bug of ours, not of the LMS
                self.errors.append(('driver', describe(error)))
            pause = self.rng.expovariate(1 / self.load.think) \
                if self.load.think else 0
            time.sleep(min(pause, 5 * self.load.think))
        self.proxy('close')()

    def step(self):
        roll = self.rng.random()
        if roll < 0.15 and self.acked:
            urls = self.rng.sample(sorted(self.acked),
                                   min(self.load.small, len(self.acked)))
            self.call('getURLStates', urls,
                      expect=lambda answer: isinstance(answer, list))
        elif roll < 0.45 and len(self.acked) > self.load.small:
            size = (self.load.large if len(self.acked) > self.load.large
                    and self.run_.take_large(self.rng) else self.load.small)
            self.unregister(size)
        else:
            size = self.load.large if self.run_.take_large(self.rng) \
                else self.load.small
            self.register(size)

    def register(self, size):
        load = self.load
        wanted = set()
        from_pool = int(size * load.shared_share)
        with self.callback.lock:
            mine = set(self.links)
        candidates = 0
        while len(wanted) < from_pool and candidates < 4 * from_pool:
            candidates += 1
            url = self.run_.pages.shared(self.rng.randrange(load.shared_pool))
            if url not in mine:
                wanted.add(url)
        while len(wanted) < size:
            wanted.add(self.run_.pages.own(self.index, self.next_own))
            self.next_own += 1
        urls = sorted(wanted)
        self.rng.shuffle(urls)
        # As a client site does: the links are in its database first,
        # then it tells the LMS.
        with self.callback.lock:
            self.links.update(urls)
        self.touched.update(urls)
        ok, answer = self.call(
            'registerURLs', urls,
            expect=lambda answer: isinstance(answer, list))
        if ok:
            self.acked.update(urls)
            self.uncertain.difference_update(urls)
            self.callback.take_answer(answer)
        else:
            self.uncertain.update(urls)

    def unregister(self, size):
        urls = self.rng.sample(sorted(self.acked), size)
        with self.callback.lock:
            self.links.difference_update(urls)
            for url in urls:
                self.callback.known.pop(url, None)
        self.acked.difference_update(urls)
        self.touched.update(urls)
        ok, answer = self.call('unregisterURLs', urls,
                               expect=lambda answer: answer is True)
        if ok:
            self.uncertain.difference_update(urls)
        else:
            self.uncertain.update(urls)


# --- processes -----------------------------------------------------------------

class Services:
    """The LMS's long-running processes; one that exits is counted and
    started again."""

    def __init__(self, tmp, confs):
        self.tmp = tmp
        self.confs = confs        # name -> zope.conf
        self.procs = {}
        self.logs = {}
        self.deaths = []          # (name, exit status, seconds into run)
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.watcher = threading.Thread(target=self._watch, daemon=True,
                                        name='services-watcher')

    def log_path(self, name):
        return os.path.join(self.tmp, name + '.log')

    def start(self, name):
        script = name.split('-')[0]
        log = self.logs.get(name)
        if log is None:
            log = self.logs[name] = open(self.log_path(name), 'ab')
        self.procs[name] = subprocess.Popen(
            [os.path.join(processes.BIN, script), '-C', self.confs[name]],
            cwd=processes.CHECKOUT, stdout=log, stderr=subprocess.STDOUT)

    def watch(self):
        self.watcher.start()

    def _watch(self):
        while not self.stopping.wait(0.5):
            with self.lock:
                self._look(restart=True)

    def _look(self, restart):
        for name, proc in list(self.procs.items()):
            status = proc.poll()
            if status is None:
                continue
            self.deaths.append(
                (name, status, time.monotonic() - self.started))
            self.logs[name].write(
                b'\n=== concurrency run: exited with %d%s ===\n' % (
                    status, b', started again' if restart else b''))
            self.logs[name].flush()
            if restart:
                self.start(name)
            else:
                del self.procs[name]

    def stop(self):
        self.stopping.set()
        if self.watcher.is_alive():
            self.watcher.join(10)
        with self.lock:
            # whatever exited since the last look died on its own
            self._look(restart=False)
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in self.procs.items():
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.procs.clear()
            for log in self.logs.values():
                log.close()
            self.logs.clear()


class SyncLoop(threading.Thread):
    """bin/sync --force, over and over, until stopped."""

    FETCHED = re.compile(r'(\S+): fetched (\d+), added (\d+), removed (\d+), '
                         r'notified (\d+)')
    FAILED = re.compile(r'^sync: (\S+) failed: (.*)$', re.M)

    def __init__(self, conf, log_path, pause):
        super().__init__(name='sync-loop', daemon=True)
        self.conf = conf
        self.log_path = log_path
        self.pause = pause
        self.stopping = threading.Event()
        self.started = 0
        self.completed = 0                 # exit status 0
        self.statuses = collections.Counter()
        self.client_syncs = 0
        self.client_failures = collections.Counter()  # error text -> count
        self.proc = None

    def run(self):
        while not self.stopping.is_set():
            self.started += 1
            with open(self.log_path, 'ab') as log:
                log.write(b'=== bin/sync run %d ===\n' % self.started)
                log.flush()
                self.proc = subprocess.Popen(
                    [os.path.join(processes.BIN, 'sync'), '-C', self.conf,
                     '--force'], cwd=processes.CHECKOUT,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                output, _ = self.proc.communicate()
                log.write(output)
            status = self.proc.returncode
            self.statuses[status] += 1
            if status == 0:
                self.completed += 1
            text = output.decode('utf-8', 'replace')
            self.client_syncs += len(self.FETCHED.findall(text))
            for client_id, error in self.FAILED.findall(text):
                self.client_failures[_generic(error)] += 1
            self.stopping.wait(self.pause)

    def stop(self, timeout=600):
        """Let the current run finish; start no other."""
        self.stopping.set()
        self.join(timeout)
        if self.is_alive() and self.proc is not None:
            self.proc.kill()
            self.join(30)


def _generic(text):
    """An error text without the details that differ each time (object
    ids, serials, times, counts), so that equal errors count together."""
    text = re.sub(r'0x[0-9a-f]+', '0x...', text)
    text = re.sub(r'[\d-]+ \d\d:\d\d:\d\d(\.\d+)?', '(time)', text)
    return re.sub(r'\d{6,}|\d+(\.\d+)? s\b', 'N', text)[:300]


# --- reading results -----------------------------------------------------------

LOG_PATTERNS = {
    # a retry announced in the log: zope.app.publication's warning, the
    # workers' retry line
    'retry lines': re.compile(
        r'Competing writes/reads at|conflict(?: in \S+)?, retrying'),
    # a conflict given up, as the LMS says it
    'given up': re.compile(
        r'gave up on a conflict|gave up after \d+ conflicts'),
    # the last line of a traceback that ends in a ConflictError
    'ConflictError tracebacks': re.compile(
        r'^(?:[\w.]+\.)?\w*ConflictError\b(?!,)', re.M),
}

# The summary line of gocept.lms.conflicts: "conflicts since start:
# checker 3 (3 retried), ..."
SUMMARY = re.compile(r'conflicts since start: (.*)$', re.M)
SUMMARY_ITEM = re.compile(r'(\S+) (\d+) \((\d+) retried\)')
# Where one lifetime of a process ends in its log: a restart by Services,
# a new run by SyncLoop
LIFETIME = re.compile(r'^=== (?:concurrency run|bin/sync run).*$', re.M)


def read_log(path):
    if not os.path.exists(path):
        return None
    with open(path, errors='replace') as f:
        return f.read()


def count_log(text):
    """What a process's log says about conflicts."""
    if text is None:
        return {}
    figures = {name: len(pattern.findall(text))
               for name, pattern in LOG_PATTERNS.items()}
    figures['tracebacks'] = text.count('Traceback (most recent call last)')
    return figures


def logged_counters(text):
    """The conflict counters a process logged in its summary lines:
    (conflicts, retried), summed over its lifetimes (the last summary of
    each), or None."""
    found = None
    for part in LIFETIME.split(text or ''):
        lines = SUMMARY.findall(part)
        if not lines:
            continue
        found = found or [0, 0]
        for where, conflicts, retried in SUMMARY_ITEM.findall(lines[-1]):
            found[0] += int(conflicts)
            found[1] += int(retried)
    return None if found is None else tuple(found)


def stats_counters(path):
    """(conflicts, retried) a checker published in its stats file, or
    None. Another engineer adds them; any shape with numbers under keys
    naming conflicts and retries is read."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    figures = numbers(data)
    conflicts = [v for k, v in figures.items()
                 if 'conflict' in k.lower() and 'retr' not in k.lower()]
    retried = [v for k, v in figures.items() if 'retr' in k.lower()]
    if not conflicts:
        return None
    return (sum(conflicts), sum(retried) if retried else None)


def numbers(data, prefix=''):
    """{key path: number} of a JSON structure."""
    found = {}
    if isinstance(data, dict):
        for key, value in data.items():
            found.update(numbers(value, '%s%s.' % (prefix, key)))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        found[prefix.rstrip('.')] = data
    return found


def fetch_metrics(port, site='lms'):
    """The text of @@metrics, or None."""
    token = base64.b64encode(
        ('%s:%s' % (MONITOR_LOGIN, MONITOR_PASSWORD)).encode()).decode()
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        connection.request('GET', '/%s/@@metrics' % site,
                           headers={'Authorization': 'Basic ' + token})
        response = connection.getresponse()
        body = response.read().decode('utf-8', 'replace')
        return body if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


METRIC = re.compile(r'^(\w+)(?:\{(.*)\})? (\S+)$')


def metric_counters(text, process):
    """(conflicts, retried) from the @@metrics samples about conflicts
    with the label process="<process>", or None."""
    conflicts = retried = None
    for line in (text or '').splitlines():
        match = METRIC.match(line)
        if match is None or 'conflict' not in match.group(1):
            continue
        name, labels, value = match.groups()
        if 'process="%s"' % process not in (labels or ''):
            continue
        value = float(value)
        if 'retr' in name:
            retried = (retried or 0) + value
        else:
            conflicts = (conflicts or 0) + value
    if conflicts is None:
        return None
    return (int(conflicts), None if retried is None else int(retried))


# --- faults during a run ---------------------------------------------------

def kill_postgresql(run):
    """kill -9 of PostgreSQL, started again at once (it recovers)."""
    run.postgresql.kill()
    run.postgresql.start()


def kill_checker(run, name='checker-1'):
    """kill -9 of checker-1 (started again by the run, as by supervisord;
    what it had claimed is checked after its lease)."""
    with run.services.lock:
        proc = run.services.procs[name]
        # its database process too, as when the host takes both
        victims = [proc.pid] + processes.child_pids(proc.pid)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        proc.wait()


# --- a run ----------------------------------------------------------------------

class Run:
    """One concurrency run in the directory `tmp`; see the module."""

    def __init__(self, load, tmp, say=None, storage='zeo', postgresql=None,
                 faults=()):
        """`storage`: 'zeo' or 'postgresql'; for the latter the run makes a
        database on the server `postgresql` (a pgserver.PostgreSQL), or
        starts a server of its own in `tmp`.

        `faults`: (seconds into the load, fault(run)) pairs; each fault is
        done at its time while the clients go on (`kill_postgresql`,
        `kill_checker`).
        """
        assert storage in STORAGES, storage
        self.load = load
        self.tmp = tmp
        self.storage = storage
        self.faults = sorted(faults, key=lambda fault: fault[0])
        self.postgresql = postgresql
        self.own_postgresql = None
        self.say = say or (lambda text: None)
        self.stopping = threading.Event()
        self.large_left = load.large_calls
        self.large_lock = threading.Lock()
        self.clients = []
        self.callbacks = []
        self.services = None
        self.sync = None
        self.timings = {}
        self.metrics = {}
        self.database_status = None
        self.check_errors = []

    def take_large(self, rng):
        """Whether the next write call is a large one."""
        if rng.random() >= self.load.large_share:
            return False
        with self.large_lock:
            if self.large_left <= 0:
                return False
            self.large_left -= 1
            return True

    # set-up

    def write_configuration(self):
        site = processes.write_monitor_site_zcml(
            self.tmp, MONITOR_LOGIN, MONITOR_PASSWORD)
        self.ports = {name: processes.free_port() for name in WEBS}
        self.port = self.ports[WEBS[0]]
        common = processes.lms_settings(
            self.tmp, self.port, self.smtp.port, ADMIN_SECRET,
            callback_timeout=60, notify_interval=1, notify_poll=0.5,
            check_poll=0.5, check_lease=self.load.check_lease,
            checker_read_timeout=10,
            check_stats_file=os.path.join(self.tmp, 'checker-1.json'))
        confs = {}
        for name in SERVICES + ('sync',):
            config = dict(common)
            if name in self.ports:
                config['http-address'] = '127.0.0.1:%d' % self.ports[name]
                config['public-url'] = self.url(name)
            if name.startswith('checker-'):
                # each checker publishes its own figures
                config['check-stats-file'] = os.path.join(
                    self.tmp, name + '.json')
            directory = os.path.join(self.tmp, name)
            os.makedirs(directory, exist_ok=True)
            confs[name] = processes.write_zope_conf(
                directory, self.database, config, site)
        self.confs = confs
        self.lms_urls = [self.url(name) for name in WEBS]
        self.lms_url = self.lms_urls[0]

    def url(self, web):
        return 'http://127.0.0.1:%d/lms/' % self.ports[web]

    def start_database(self):
        if self.storage == 'zeo':
            self.zeo = processes.ZEOServer(self.tmp).start()
            return self.zeo
        if self.postgresql is None:
            self.postgresql = self.own_postgresql = processes.postgresql(
                self.tmp)
        return processes.database(self.postgresql)

    def database_gone(self):
        """How the database server ended during the run, or None."""
        if self.storage == 'zeo':
            return self.zeo.process.poll()
        return None if self.postgresql.pid() else 'not running'

    def stop_database(self):
        if getattr(self, 'zeo', None) is not None:
            self.zeo.stop()
        if self.own_postgresql is not None:
            self.own_postgresql.stop()

    def start(self):
        started = time.monotonic()
        self.database = self.start_database()
        self.smtp = SMTPSink().start()
        self.page_server = WebServerThread(PAGE_HOSTS)
        self.pages = Pages(self.load, self.page_server)
        self.write_configuration()
        self.services = Services(self.tmp, self.confs)
        # The web server creates the site on its first start; the others
        # start when it is there.
        self.services.start(WEBS[0])
        processes.wait_for_port('127.0.0.1', self.port, timeout=120)
        for name in SERVICES[1:]:
            self.services.start(name)
        for name in WEBS[1:]:
            processes.wait_for_port('127.0.0.1', self.ports[name],
                                    timeout=120)
        self.services.watch()
        self.register_clients()
        self.timings['start'] = time.monotonic() - started

    def register_clients(self):
        admin = xmlrpc.client.ServerProxy(self.lms_url)
        for index in range(self.load.clients):
            client_id = 'client%02d' % (index + 1)
            callback = RecordingCallback(client_id)
            self.callbacks.append(callback)
            admin.registerClient(ADMIN_SECRET, client_id, callback.url,
                                 'Contact %d' % index,
                                 '%s@example.com' % client_id)
            mail = self.smtp.pop(timeout=60)[2]
            found = re.search(r'Client id:\s+(\S+)', mail.get_content())
            assert found and found.group(1) == client_id, mail
            password = password_from(mail)
            callback.password = password
            self.clients.append(
                LoadClient(self, index, client_id, password, callback))
        admin('close')()

    def stop(self):
        self.stopping.set()
        if self.sync is not None and self.sync.is_alive():
            self.sync.stop(timeout=60)
        for client in self.clients:
            client.join(10)
        if self.services is not None:
            self.services.stop()
        for callback in self.callbacks:
            callback.stop()
        for name in ('page_server', 'smtp'):
            thing = getattr(self, name, None)
            if thing is not None:
                thing.stop()
        self.stop_database()

    # the load

    def run_load(self):
        self.sync = SyncLoop(self.confs['sync'],
                             os.path.join(self.tmp, 'sync.log'),
                             self.load.sync_pause)
        started = time.monotonic()
        self.load_deadline = started + self.load.duration
        self.say('load: %d clients for %.0f s' % (
            len(self.clients), self.load.duration))
        self.sync.start()
        for client in self.clients:
            client.start()
        for at, fault in self.faults:
            time.sleep(max(0.0, started + at - time.monotonic()))
            self.say('fault: %s' % fault.__doc__.splitlines()[0])
            fault(self)
        for client in self.clients:
            client.join(self.load.duration + self.load.call_timeout + 60)
        self.timings['load'] = time.monotonic() - started
        self.say('load done; waiting for the sync run in progress')
        started = time.monotonic()
        self.sync.stop()
        self.timings['last sync'] = time.monotonic() - started

    # the outcome

    def lms_states(self, client, urls, attempts=5):
        """url -> (state, reason) as the LMS answers for `client`.

        A failed call counts as a client-visible error and is tried
        again (the figures need the answer).
        """
        urls = sorted(urls)
        found = {}
        for i in range(0, len(urls), STATES_CHUNK):
            for attempt in range(attempts):
                proxy = xmlrpc.client.ServerProxy(
                    self.lms_url, transport=TimeoutTransport(
                        self.load.call_timeout))
                try:
                    rows = proxy.getURLStates(
                        client.client_id, client.password,
                        urls[i:i + STATES_CHUNK])
                except Exception as error:
                    self.check_errors.append(
                        ('getURLStates after the load', describe(error)))
                    if attempt + 1 == attempts:
                        raise
                    time.sleep(1)
                    continue
                finally:
                    proxy('close')()
                for url, state, reason in rows:
                    found[url] = (state, reason)
                break
        return found

    def check_subscriptions(self, report):
        """Acknowledged URLs the LMS lacks, unregistered ones it kept."""
        admin = xmlrpc.client.ServerProxy(self.lms_url)
        listed = {info['id']: info['urls']
                  for info in admin.listClients(ADMIN_SECRET)}
        admin('close')()
        for client in self.clients:
            states = self.lms_states(client, client.touched)
            report.missing[client.client_id] = len(
                client.acked - set(states))
            report.kept[client.client_id] = len(
                set(states) - client.links - client.uncertain)
            report.uncertain[client.client_id] = len(client.uncertain)
            # Its count against the URLs it answers for
            report.listed[client.client_id] = (
                listed.get(client.client_id), len(states))

    def settle(self, report):
        """Wait until every URL is checked and its state is at its
        client; record how far it got.

        Gives up at `settle_timeout`, or when every URL is checked and no
        further state arrived for `stall` seconds.
        """
        started = time.monotonic()
        deadline = started + self.load.settle_timeout
        last, last_change = None, started
        while True:
            delivered, unchecked, expected, present = {}, {}, {}, {}
            undelivered = []
            for client in self.clients:
                states = self.lms_states(client, client.acked)
                with client.callback.lock:
                    known = dict(client.callback.known)
                expected[client.client_id] = len(client.acked)
                present[client.client_id] = len(states)
                delivered[client.client_id] = sum(
                    1 for url, (state, reason) in states.items()
                    if state != UNKNOWN and url in known
                    and known[url][0] == state)
                undelivered.extend(
                    (client.client_id, url, state, known.get(url))
                    for url, (state, reason) in sorted(states.items())
                    if url not in known or known[url][0] != state)
                unchecked[client.client_id] = sum(
                    1 for state, reason in states.values()
                    if state == UNKNOWN)
            now = time.monotonic()
            if delivered != last:
                last, last_change = delivered, now
            # URLs that went missing are counted as such; they cannot
            # arrive any more.
            if delivered == present:
                break
            if now > deadline or (not any(unchecked.values())
                                  and now - last_change > self.load.stall):
                self.say('settling: giving up')
                break
            self.say('settling: %d of %d states delivered, %d URLs not '
                     'checked yet' % (sum(delivered.values()),
                                      sum(expected.values()),
                                      sum(unchecked.values())))
            time.sleep(3)
        report.delivered = delivered
        report.expected = expected
        report.unchecked = unchecked
        report.undelivered = undelivered
        self.timings['settle'] = time.monotonic() - started

    def collect(self, report):
        """The figures; the services have stopped (and written their
        last figures and log lines)."""
        for client in self.clients:
            report.calls.update(client.calls)
            report.urls_sent.update(client.urls_sent)
            for method, error in client.errors:
                report.errors[(method, _generic(error))] += 1
            report.pushed += client.callback.pushed
            report.answered += client.callback.answered
            report.callback_auth_errors += client.callback.credential_errors
        for method, error in self.check_errors:
            report.errors[(method, _generic(error))] += 1
        report.deaths = list(self.services.deaths)
        if self.database_status is not None:
            report.deaths.append((self.storage, self.database_status, None))
        report.sync_started = self.sync.started
        report.sync_completed = self.sync.completed
        report.sync_statuses = dict(self.sync.statuses)
        report.client_syncs = self.sync.client_syncs
        report.client_sync_failures = dict(self.sync.client_failures)
        report.metrics_read = bool(self.metrics) and all(
            text is not None for text in self.metrics.values())
        for name in SERVICES + ('sync',):
            log = read_log(os.path.join(self.tmp, name + '.log'))
            report.logs[name] = count_log(log)
            if name in WEBS:
                counters = metric_counters(self.metrics.get(name), 'web')
            elif name.startswith('checker-'):
                counters = stats_counters(
                    os.path.join(self.tmp, name + '.json'))
            else:
                counters = None
            report.counters[name] = counters or logged_counters(log)
        report.timings = dict(self.timings)
        report.tmp = self.tmp

    def __call__(self):
        """Run everything; return the Report."""
        report = Report(self.load, self.storage)
        try:
            self.start()
            self.run_load()
            self.say('checking subscriptions')
            self.check_subscriptions(report)
            self.settle(report)
            self.metrics = {name: fetch_metrics(port)
                            for name, port in self.ports.items()}
            self.database_status = self.database_gone()
        finally:
            self.stop()
        self.collect(report)
        return report


class Report:
    """The figures of a run and what is wrong with them."""

    def __init__(self, load, storage='zeo'):
        self.load = load
        self.storage = storage
        self.calls = collections.Counter()
        self.urls_sent = collections.Counter()
        self.errors = collections.Counter()
        self.deaths = []
        self.missing = {}
        self.kept = {}
        self.uncertain = {}
        self.undelivered = []   # (client, url, LMS state, client's)
        self.listed = {}
        self.delivered = {}
        self.expected = {}
        self.unchecked = {}
        self.pushed = 0
        self.answered = 0
        self.callback_auth_errors = 0
        self.sync_started = self.sync_completed = 0
        self.sync_statuses = {}
        self.client_syncs = 0
        self.client_sync_failures = {}
        self.logs = {}
        self.counters = {}
        self.metrics_read = False
        self.timings = {}
        self.tmp = None

    def figures(self):
        """The figures a correct LMS gets right: name -> (got, wanted)."""
        miscounted = sorted(client_id for client_id, (listed, answered)
                            in self.listed.items() if listed != answered)
        return collections.OrderedDict([
            ('client-visible errors', (sum(self.errors.values()), 0)),
            ('process deaths', (len(self.deaths), 0)),
            ('acknowledged URLs missing', (sum(self.missing.values()), 0)),
            ('unregistered URLs still subscribed',
             (sum(self.kept.values()), 0)),
            ('clients whose URL count in listClients differs from '
             'getURLStates',
             (len(miscounted), 0)),
            ('URLs not checked after settling',
             (sum(self.unchecked.values()), 0)),
            ('states delivered', (sum(self.delivered.values()),
                                  sum(self.expected.values()))),
            ('bin/sync runs completed', (self.sync_completed,
                                         self.sync_started)),
            ('failed client syncs',
             (sum(self.client_sync_failures.values()), 0)),
        ])

    def problems(self):
        return ['%s: %s, should be %s' % (name, got, wanted)
                for name, (got, wanted) in self.figures().items()
                if got != wanted]

    def table(self):
        lines = []
        add = lines.append
        load = self.load
        add('database: %s' % {'zeo': 'ZEO (FileStorage)',
                               'postgresql': 'PostgreSQL (RelStorage, '
                                             'history-free)'}[self.storage])
        add('load: %d clients, %.0f s, calls of %d URLs and at most %d of '
            '%d, shared pool of %d URLs' % (
                load.clients, load.duration, load.small, load.large_calls,
                load.large, load.shared_pool))
        add('phases: %s' % ', '.join(
            '%s %.1f s' % item for item in self.timings.items()))
        add('')
        total = sum(self.calls.values())
        add('calls made: %d (%s)' % (total, ', '.join(
            '%s %d' % item for item in sorted(self.calls.items()))))
        add('URLs sent: %s' % ', '.join(
            '%s %d' % item for item in sorted(self.urls_sent.items())))
        if self.timings.get('load'):
            add('calls per second: %.1f' % (total / self.timings['load']))
        add('states received by the clients: %d by updateManyStates, %d in '
            'registerURLs answers' % (self.pushed, self.answered))
        add('')
        add('| figure | got | should be |')
        add('|---|---|---|')
        for name, (got, wanted) in self.figures().items():
            mark = '' if got == wanted else ' **OFF**'
            add('| %s | %s | %s%s |' % (name, got, wanted, mark))
        add('')
        add('| process | deaths | conflicts (counter) | retried (counter) | '
            'retry lines (log) | given up (log) | ConflictError tracebacks '
            '(log) | tracebacks (log) |')
        add('|---|---|---|---|---|---|---|---|')
        deaths = collections.Counter(name for name, *_ in self.deaths)

        def shown(value):
            return 'n/a' if value is None else value
        for name in SERVICES + ('sync',):
            log = self.logs.get(name) or {}
            conflicts, retried = self.counters.get(name) or (None, None)
            add('| %s | %d | %s | %s | %s | %s | %s | %s |' % (
                name, deaths[name], shown(conflicts), shown(retried),
                shown(log.get('retry lines')), shown(log.get('given up')),
                shown(log.get('ConflictError tracebacks')),
                shown(log.get('tracebacks'))))
        add('(counters: each web from its @@metrics, checkers from their stats '
            'files, notifier and sync from the summary lines in their '
            'logs; sync summed over its runs)')
        if not self.metrics_read:
            add('(@@metrics could not be read)')
        add('')
        add('bin/sync: %d runs started, %d completed, exit statuses %s; '
            '%d client syncs done, %d failed' % (
                self.sync_started, self.sync_completed,
                ', '.join('%s: %d' % item
                          for item in sorted(self.sync_statuses.items())),
                self.client_syncs, sum(self.client_sync_failures.values())))
        for error, count in sorted(self.client_sync_failures.items()):
            add('  sync failure %dx: %s' % (count, error))
        if self.errors:
            add('client-visible errors:')
            for (method, error), count in self.errors.most_common():
                add('  %dx %s: %s' % (count, method, error))
        for name, status, when in self.deaths:
            add('process %s exited with status %s%s' % (
                name, status, '' if when is None else ' after %.0f s' % when))
        add('')
        add('| client | URLs | missing | kept | listClients | delivered |')
        add('|---|---|---|---|---|---|')
        for client_id in sorted(self.expected or self.missing):
            listed, acked = self.listed.get(client_id, (None, None))
            add('| %s | %s | %s | %s | %s | %s |' % (
                client_id, self.expected.get(client_id, acked),
                self.missing.get(client_id), self.kept.get(client_id),
                listed, self.delivered.get(client_id)))
        if self.undelivered:
            add('states not delivered (client, URL, state in the LMS, '
                'what the client has and how it came), at most 20:')
            for row in self.undelivered[:20]:
                add('  %s %s %r %r' % row)
        if any(self.uncertain.values()):
            add('URLs of failed calls, left out of the comparisons: %d'
                % sum(self.uncertain.values()))
        if self.callback_auth_errors:
            add('callback calls with wrong credentials: %d'
                % self.callback_auth_errors)
        if self.tmp:
            add('')
            add('logs: %s' % self.tmp)
        return '\n'.join(lines)
