"""Several checkers: politeness across them, and what a second one adds.

    bin/py benchmarks/checkers.py [--repeat 2] [--count 10000] [--per-host 20]

Each run starts a ZEO server over a fresh FileStorage, the checker tests'
HTTP server on 100 loopback addresses (127.0.1.1 to 127.0.1.100, each a
host; in a process of its own, which logs the arrival of every request)
and one or two `bin/checker` daemons. Once the checkers have split the
schedule's shards between them, one transaction registers the URLs; the
clock runs from that commit until the last result is committed (the
site's state counts show no URL unchecked any more).

Politeness: two checkers at 1 request/s per host, `--per-host` URLs on
each host. The policy limit is per-host seconds (one URL per host and
second, after the first); reported are the time against it and the
smallest gap between two requests to one host in the server's log.

Throughput: politeness off, `--count` URLs over the 100 hosts, 20 checks
in flight per checker; one checker and two checkers, interleaved, each
`--repeat` times. The rate counts committed results.

Only loopback addresses are ever contacted.
"""

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


HOSTS = [f'127.0.1.{n}' for n in range(1, 101)]
CONCURRENCY = 20
SHARD_LEASE = 3.0


# --- the HTTP server, as `checkers.py --role server` -----------------------

def role_server(args):
    """Serve until stdin closes, then write the request log to args.log."""
    from gocept.lms.checking.tests.server import LocalHTTPServer

    async def serve():
        server = LocalHTTPServer(HOSTS, args.port)
        await server.start()
        print('ready', flush=True)
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.read)
        await server.stop()
        with open(args.log, 'w') as f:
            json.dump([(when, host, target)
                       for when, host, method, target, agent in server.log],
                      f)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve())


class Server:

    def __init__(self, tmp):
        from gocept.lms.tests import processes
        self.port = processes.free_port('127.0.1.1')
        self.log = os.path.join(tmp, 'requests.json')
        self.process = subprocess.Popen(
            [sys.executable, __file__, '--role', 'server', '--port',
             str(self.port), '--log', self.log],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env())
        if b'ready' not in self.process.stdout.readline():
            self.process.kill()
            raise RuntimeError('server did not start')

    def stop(self):
        """Stop; return the log: [(monotonic time, host, target)]."""
        self.process.stdin.close()
        self.process.wait(60)
        with open(self.log) as f:
            return json.load(f)


def child_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
    return env


# --- one run ----------------------------------------------------------------

def open_site(db, hook=False):
    """A connection of its own; `hook`: make its site the current one
    (for writes, whose subscribers look their utilities up)."""
    import transaction
    import zope.component.hooks
    tm = transaction.TransactionManager()
    connection = db.open(tm)
    site = connection.root()['Application']['lms']
    if hook:
        zope.component.hooks.setSite(site)
    return tm, connection, site.getSiteManager()


def read(db, what):
    tm, connection, sm = open_site(db)
    try:
        return what(sm)
    finally:
        tm.abort()
        connection.close()


def owners(sm):
    from gocept.lms.interfaces import ISchedule
    return collections.Counter(
        shard.owner for shard in sm.getUtility(ISchedule).shards)


def balanced(counts, checkers, share):
    return (None not in counts and len(counts) == checkers
            and set(counts.values()) == {share})


def unchecked(sm):
    from gocept.lms.interfaces import IStateCounts, UNKNOWN
    return sm.getUtility(IStateCounts)[UNKNOWN]


def run(checkers, rate, urls):
    """Seconds from registering `urls` to the last result committed, and
    the server's request log."""
    import zope.component.hooks
    import gocept.lms.client
    import gocept.lms.interfaces
    import gocept.lms.scripts
    from gocept.lms.interfaces import IClientProvider, IURLProvider
    from gocept.lms.tests import processes
    tmp = tempfile.mkdtemp(prefix='lms-bench-checkers-')
    zeo = processes.ZEOServer(tmp).start()
    server = Server(tmp)
    procs = []
    try:
        conf = processes.write_zope_conf(tmp, zeo, {
            'check-stats-file': '',
            'check-poll': '0.2',
            'check-shard-lease': str(SHARD_LEASE),
            'checker-allow-cidrs': '127.0.1.0/24',
            'checker-per-host-rate': str(rate),
            'checker-concurrency': str(CONCURRENCY)})
        db = gocept.lms.scripts.open_database(conf, quiet=True)
        tm, connection, sm = open_site(db, hook=True)
        sm.getUtility(IClientProvider).add(gocept.lms.client.Client('bench'))
        tm.commit()
        procs = [subprocess.Popen(
            [os.path.join(processes.BIN, 'checker'), '-C', conf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in range(checkers)]
        share = len(read(db, lambda sm: sm.getUtility(
            gocept.lms.interfaces.ISchedule).shards)) // checkers
        wait(lambda: balanced(read(db, owners), checkers, share), procs)
        urls = [url.replace('PORT', str(server.port)) for url in urls]
        tm.begin()
        sm.getUtility(IClientProvider)['bench'].register_urls(
            sm.getUtility(IURLProvider).add_multiple(urls))
        tm.commit()
        start, cpu = time.monotonic(), cpu_times()
        wait(lambda: read(db, unchecked) == 0, procs, pause=0.02)
        elapsed = time.monotonic() - start
        busy = cpu_busy(cpu, cpu_times())
        zope.component.hooks.setSite(None)
        connection.close()
        db.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        log = server.stop()
        zeo.stop()
    return elapsed, log, busy


def cpu_times():
    """(busy, total) jiffies of all cores, from /proc/stat."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]    # idle, iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(before, after):
    """The share of the machine's cores busy between two cpu_times()."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def wait(condition, procs, pause=0.1, timeout=600):
    guard = time.monotonic() + timeout
    while not condition():
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError('a checker ended')
        if time.monotonic() > guard:
            raise RuntimeError('timed out')
        time.sleep(pause)


def host_urls(per_host):
    return [f'http://{host}:PORT/ok?{n}'
            for n in range(per_host) for host in HOSTS]


def gaps(log):
    """The gaps between two requests to one host, in the server's log."""
    by_host = collections.defaultdict(list)
    for when, host, target in log:
        by_host[host].append(when)
    return [b - a for times in by_host.values()
            for a, b in zip(sorted(times), sorted(times)[1:])]


# --- main -------------------------------------------------------------------

def spread(values):
    return (f'median {statistics.median(values):.0f}, '
            f'min {min(values):.0f}, max {max(values):.0f}')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--role', choices=['server'])
    parser.add_argument('--port', type=int)
    parser.add_argument('--log')
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--count', type=int, default=10000)
    parser.add_argument('--per-host', type=int, default=20)
    parser.add_argument('--skip-politeness', action='store_true')
    parser.add_argument('--skip-throughput', action='store_true')
    args = parser.parse_args()
    if args.role == 'server':
        return role_server(args)
    print(f'{os.uname().sysname} {os.uname().release}, '
          f'{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}')
    if not args.skip_politeness:
        limit = float(args.per_host)
        for n in range(args.repeat):
            elapsed, log, busy = run(2, 1.0, host_urls(args.per_host))
            between = gaps(log)
            print(f'politeness, 2 checkers, {len(HOSTS)} hosts x '
                  f'{args.per_host} URLs at 1/s: {elapsed:.2f} s, policy '
                  f'limit {limit:.0f} s ({elapsed / limit - 1:+.1%}); '
                  f'{len(log)} requests, smallest gap at one host '
                  f'{min(between):.4f} s, gaps under 1 s: '
                  f'{sum(g < 1.0 for g in between)}', flush=True)
    if not args.skip_throughput:
        urls = [f'http://{HOSTS[n % len(HOSTS)]}:PORT/ok?{n}'
                for n in range(args.count)]
        rates = {1: [], 2: []}
        for n in range(args.repeat):
            for checkers in (1, 2):
                elapsed, log, busy = run(checkers, 0, urls)
                rates[checkers].append(len(urls) / elapsed)
                print(f'throughput, {checkers} checker(s): '
                      f'{rates[checkers][-1]:.0f} results/s '
                      f'({elapsed:.1f} s, {len(log)} requests, CPU busy '
                      f'{busy:.0%} of {os.cpu_count()} cores)', flush=True)
        ratios = [b / a for a, b in zip(rates[1], rates[2])]
        print(f'one checker: {spread(rates[1])} results/s; two: '
              f'{spread(rates[2])} results/s; ratio per pair '
              + ', '.join(f'{r:.2f}' for r in ratios))


if __name__ == '__main__':
    sys.exit(main())
