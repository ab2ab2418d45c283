"""Checker throughput against a local server, beside LinkChecker.

    bin/py benchmarks/check_throughput.py [--repeat 3] [--skip-b]
    bin/py benchmarks/check_throughput.py --slow-dns [--repeat 3] [--rate 1]
        [--slow-hosts 50] [--fragments 0.1]

10,000 URLs over 100 loopback hosts (127.0.1.1 to 127.0.1.100), 10% of
them 404, served by gocept.lms.checking.tests.server in its own process.
Every contestant runs in its own process too, so its peak RSS is its own.

Run A, politeness off: URLs/s of the gocept.lms checking engine, of a raw
aiohttp keep-alive client (what the server and this machine can do at
all; with GET as the baselines in BENCHMARKS.md and with HEAD, which is
what the engine sends) and of LinkChecker (PyPI `linkchecker` in benchmarks/work/, installed
on first use), all with 20 in flight. Run B: the engine at 1 request per
second per host; the policy limit is URLs / hosts seconds.

`checker-db` is the whole checker as bin/checker runs it (the checks in one
process, claims and writes in a second, `checker.ProcessWriter`): a ZEO
client (of a real ZEO server over a FileStorage) that claims the due URLs
from the schedule, checks them with the engine and writes states, reasons,
next checks and the clients' pending notifications back in batched
transactions. Its rate counts only checks whose results were committed.

Run `--slow-dns` (alone): bin/checker as in `checker-db`, on a layout
where every host is a name: 10,000 URLs over 150 names, 100 of them
answering at once (fast-N.example, 127.0.1.1 to .100) and 50 after
`--slow-delay` seconds (5; slow-N.example, 127.0.1.101 to .150), from a
stub resolver injected into the checker (no real DNS). When a third of
the URLs are checked, a client registers a new URL (new.example,
127.0.1.151). Each
repetition runs the same layout with every name answering at once, then
with the slow ones; it reports when the fast names' URLs were done and
their rate, when the slow names' URLs were, and how long the new URL
waited for its check (against `check-poll`, the delay a new URL may wait).
`--rate` sets the politeness (default 0, off). `--slow-hosts N` makes
only the first N of the slow names part of the layout (2 of 152, about
1%: `--slow-hosts 2`), `--fragments 0.1` gives that share of the URLs a
#fragment on an HTML page of their own (each costs a GET of the page
and its parsing).

Only loopback addresses are ever contacted.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, 'work')
VENV = os.path.join(WORK, 'venv-linkchecker')
HOSTS = [f'127.0.1.{n}' for n in range(1, 101)]
CONCURRENCY = 20


SLOW_HOSTS = 50
FAST_NAMES = [f'fast-{n}.example' for n in range(1, len(HOSTS) + 1)]
SLOW_NAMES = [f'slow-{n}.example' for n in range(1, SLOW_HOSTS + 1)]
NEW_NAME = 'new.example'
# fast-N at 127.0.1.N, slow-N at 127.0.1.(100 + N), new.example after them
NAME_ADDRESSES = {name: f'127.0.1.{n}' for n, name in enumerate(
    FAST_NAMES + SLOW_NAMES + [NEW_NAME], 1)}


def slow_dns_urls(count, port, slow_hosts=SLOW_HOSTS, fragments=0.0):
    """The --slow-dns layout: the fast names, `slow_hosts` slow ones;
    with `fragments`, that share of the URLs names a place in an HTML
    page (each its own page, so each costs a fetch of the page)."""
    names = FAST_NAMES + SLOW_NAMES[:slow_hosts]
    every = round(1 / fragments) if fragments else 0
    result = []
    for n in range(count):
        host = names[n % len(names)]
        if every and n % every == every // 2:
            path = f'/page?{n}#top'
        elif (n // len(names)) % 10 == 9:
            path = f'/missing/{n}'
        else:
            path = f'/ok?{n}'
        result.append(f'http://{host}:{port}{path}')
    return result


def urls(count, port):
    result = []
    for n in range(count):
        host = HOSTS[n % len(HOSTS)]
        # every tenth URL of a host is missing
        path = f'/missing/{n}' if (n // len(HOSTS)) % 10 == 9 else f'/ok?{n}'
        result.append(f'http://{host}:{port}{path}')
    return result


# --- contestants, each run as `check_throughput.py --role ROLE` -----------

async def role_engine(args):
    from gocept.lms.checking.engine import Checker
    from gocept.lms.checking.settings import CheckerSettings
    settings = CheckerSettings(
        concurrency=CONCURRENCY, per_host_rate=args.rate,
        allow_cidrs=('127.0.1.0/24',))
    items = [(n, url, None) for n, url in enumerate(urls(args.count,
                                                         args.port))]
    states = {}
    async with Checker(settings) as checker:
        start = time.perf_counter()
        async for result in checker.check_many(items):
            states[result.state] = states.get(result.state, 0) + 1
        elapsed = time.perf_counter() - start
    return dict(elapsed=elapsed, states=states)


async def role_raw(args):
    import aiohttp
    method = 'HEAD' if args.role == 'raw-head' else 'GET'
    todo = iter(urls(args.count, args.port))
    statuses = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            for url in todo:
                async with session.request(method, url) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return dict(elapsed=elapsed, states=statuses)


def open_lms(conf):
    import gocept.lms.scripts
    return gocept.lms.scripts.open_database(conf, quiet=True)


def role_setup_db(args):
    """Fill the database: one client subscribed to all URLs."""
    import transaction
    import zope.component.hooks
    import gocept.lms.client
    from gocept.lms.interfaces import IClientProvider, IURLProvider
    db = open_lms(args.conf)
    connection = db.open()
    site = connection.root()['Application']['lms']
    zope.component.hooks.setSite(site)
    client = gocept.lms.client.Client('bench')
    zope.component.getUtility(IClientProvider).add(client)
    if args.slow_dns:
        layout = slow_dns_urls(args.count, args.port, args.slow_hosts,
                               args.fragments)
    else:
        layout = urls(args.count, args.port)
    client.register_urls(zope.component.getUtility(IURLProvider).add_multiple(
        layout))
    transaction.commit()
    zope.component.hooks.setSite(None)
    connection.close()
    db.close()
    return dict(elapsed=1, states={})  # not measured


def role_checker_db(args):
    import resource
    import gocept.lms.checker
    import gocept.lms.scripts
    db = open_lms(args.conf)
    # As bin/checker runs: claims and writes in a process of its own.
    writer = gocept.lms.checker.ProcessWriter(
        gocept.lms.scripts.open_database, args.conf, quiet=True)
    runner = gocept.lms.checker.Runner(db, writer=writer)

    async def run():
        # Started and connected before the clock runs, as a checker that
        # runs for days is.
        await writer.call('site_names')
        start = time.perf_counter()
        stats = await runner.run(once=True)
        return stats, time.perf_counter() - start
    stats, elapsed = asyncio.run(run())
    db.close()
    writer_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dict(elapsed=elapsed, states=dict(stats.states),
                written=stats.written, writer_rss=writer_rss / 1024)


def register_url(db, url):
    """Register `url` for the client 'bench', as the API would."""
    import zope.component.hooks
    import gocept.lms.db
    from gocept.lms.interfaces import IClientProvider, IURLProvider

    def work(site):
        zope.component.hooks.setSite(site)
        try:
            sm = site.getSiteManager()
            sm.getUtility(IClientProvider)['bench'].register_urls(
                sm.getUtility(IURLProvider).add_multiple([url]))
        finally:
            zope.component.hooks.setSite(None)
    gocept.lms.db.in_transaction(db, 'lms', work)


def role_checker_slow_dns(args):
    """bin/checker on the --slow-dns layout; a URL registered mid-round."""
    import gocept.lms.checker
    import gocept.lms.checkerstats
    import gocept.lms.scripts
    import gocept.lms.settings
    from gocept.lms.checking.guard import StaticResolver
    db = open_lms(args.conf)
    delays = {name: args.slow_delay
              for name in SLOW_NAMES[:args.slow_hosts]} if args.slow else {}
    resolver = StaticResolver(NAME_ADDRESSES, delays)
    finished = {}
    a_third = asyncio.Event()

    class Recording(gocept.lms.checkerstats.MeasuredChecker):
        # when each check ended, by URL
        async def check(self, url, *args, **kw):
            result = await super().check(url, *args, **kw)
            finished[url] = time.perf_counter()
            if len(finished) >= args_count // 3:
                a_third.set()
            return result

    gocept.lms.checkerstats.MeasuredChecker = Recording
    writer = gocept.lms.checker.ProcessWriter(
        gocept.lms.scripts.open_database, args.conf, quiet=True)
    runner = gocept.lms.checker.Runner(db, writer=writer, resolver=resolver)
    new_url = f'http://{NEW_NAME}:{args.port}/ok?registered-mid-round'
    args_count = args.count

    async def run():
        await writer.call('site_names')
        loop = asyncio.get_running_loop()

        async def register_later():
            await a_third.wait()
            await loop.run_in_executor(None, register_url, db, new_url)
            return time.perf_counter()

        start = time.perf_counter()
        registration = asyncio.ensure_future(register_later())
        stats = await runner.run(once=True)
        return stats, start, await registration
    stats, start, registered = asyncio.run(run())
    db.close()
    fast = [t - start for url, t in finished.items()
            if url.split('/')[2].startswith('fast-')]
    slow = [t - start for url, t in finished.items()
            if url.split('/')[2].startswith('slow-')]
    return dict(
        elapsed=time.perf_counter() - start, states=dict(stats.states),
        written=stats.written, fast=len(fast), fast_done=max(fast),
        slow=len(slow), slow_first=min(slow), slow_done=max(slow),
        new_wait=finished[new_url] - registered,
        poll=gocept.lms.settings.get().check_poll)


def run_role(args):
    if args.role == 'setup-db':
        result = role_setup_db(args)
    elif args.role == 'checker-db':
        result = role_checker_db(args)
    elif args.role == 'checker-slow-dns':
        result = role_checker_slow_dns(args)
    else:
        result = asyncio.run(
            role_engine(args) if args.role == 'engine' else role_raw(args))
    print(json.dumps(result))


# --- orchestration ---------------------------------------------------------

def measure(cmd, ok=(0,), **kw):
    """Run cmd; return (wall seconds, peak RSS MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, **kw)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(f'{cmd[:3]} failed with {proc.returncode}')
    return wall, usage.ru_maxrss / 1024, out.decode()


def contestant(role, args, rate=0):
    cmd = [sys.executable, __file__, '--role', role, '--port',
           str(args.port), '--count', str(args.count), '--rate', str(rate)]
    if getattr(args, 'conf', None):
        cmd += ['--conf', args.conf]
    if args.slow_dns:
        cmd += ['--slow-dns', '--slow-delay', str(args.slow_delay),
                '--slow-hosts', str(args.slow_hosts),
                '--fragments', str(args.fragments)]
        if args.slow:
            cmd += ['--slow']
    wall, rss, out = measure(cmd, env=child_env())
    data = json.loads(out.strip().splitlines()[-1])
    data.update(rss=rss, rate=args.count / data['elapsed'])
    return data


def child_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
    return env


def ensure_linkchecker():
    exe = os.path.join(VENV, 'bin', 'linkchecker')
    if not os.path.exists(exe):
        os.makedirs(WORK, exist_ok=True)
        subprocess.run([sys.executable, '-m', 'venv', VENV], check=True)
        subprocess.run([os.path.join(VENV, 'bin', 'pip'), 'install', '-q',
                        'linkchecker'], check=True)
    return exe


def linkchecker(args):
    exe = ensure_linkchecker()
    # LinkChecker drops root privileges to nobody: the page must be
    # readable by everyone.
    tmp = tempfile.mkdtemp(prefix='lms-bench-')
    os.chmod(tmp, 0o755)
    page = os.path.join(tmp, 'links.html')
    with open(page, 'w') as f:
        f.write('<html><body>\n')
        for url in urls(args.count, args.port):
            f.write(f'<a href="{url}">x</a>\n')
        f.write('</body></html>\n')
    os.chmod(page, 0o644)
    cmd = [exe, '-r', '1', '--check-extern', '-t', str(CONCURRENCY),
           '--no-status', '-o', 'csv', page]
    # exit status 1: broken links found, as they should be
    wall, rss, out = measure(cmd, ok=(0, 1), stderr=subprocess.DEVNULL)
    # Without --verbose only failures are listed: exactly the 404s.
    rows = [line for line in out.splitlines()
            if line.startswith('http://127.0.1.')]
    broken = sum(1 for line in rows if '404' in line.split(';')[3])
    expected = sum(1 for url in urls(args.count, args.port)
                   if '/missing/' in url)
    if broken != expected or len(rows) != expected:
        raise RuntimeError(f'LinkChecker reported {len(rows)} failures, '
                           f'{broken} of them 404, expected {expected}:\n'
                           f'{out[:2000]}')
    return dict(elapsed=wall, rss=rss, rate=args.count / wall,
                states={'404': broken})


def on_fresh_database(args, role, rate):
    """Run the contestant `role` at `rate` against a new database on a
    real ZEO server of its own; return its result."""
    from gocept.lms.tests import processes
    tmp = tempfile.mkdtemp(prefix='lms-bench-check-')
    zeo = processes.ZEOServer(tmp).start()
    try:
        args.conf = processes.write_zope_conf(tmp, zeo, {
            'secret-key-file': os.path.join(tmp, 'secret.key'),
            'check-stats-file': '',
            'checker-allow-cidrs': '127.0.1.0/24',
            'checker-per-host-rate': str(rate),
            'checker-concurrency': str(CONCURRENCY)})
        contestant('setup-db', args)
        return contestant(role, args, rate)
    finally:
        args.conf = None
        zeo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def checker_with_database(args):
    """bin/checker's work against a real ZEO server, median of rounds."""
    results = []
    for n in range(args.repeat):
        result = on_fresh_database(args, 'checker-db', 0)
        print(f'checker with database: {result["rate"]:.0f}/s', file=sys.stderr)
        results.append(result)
    results.sort(key=lambda r: r['rate'])
    median = results[len(results) // 2]
    median['rss'] = max(r['rss'] for r in results)
    return median


def slow_dns(args):
    """The --slow-dns run: every name at once, then with slow names."""
    rounds = []
    for n in range(args.repeat):
        pair = {}
        for args.slow in (False, True):
            result = on_fresh_database(args, 'checker-slow-dns', args.rate)
            pair['slow' if args.slow else 'instant'] = result
            print(f'round {n + 1}, {"slow" if args.slow else "instant"} '
                  f'names: fast done {result["fast_done"]:.2f} s, slow done '
                  f'{result["slow_done"]:.2f} s, new URL waited '
                  f'{result["new_wait"]:.2f} s', file=sys.stderr)
        rounds.append(pair)
    return rounds


def print_slow_dns(rounds, args):
    print(f'Run --slow-dns: {args.count} URLs over {len(FAST_NAMES)} names '
          f'answering at once and {args.slow_hosts} answering after '
          f'{args.slow_delay:g} s; bin/checker with ZEO writes, '
          f'{CONCURRENCY} in flight, per-host rate {args.rate:g} '
          f'({"off" if not args.rate else "on"}); a URL registered when '
          f'a third were checked; {len(rounds)} rounds, each names at '
          f'once, then slow')
    rates, times = [], []
    for n, pair in enumerate(rounds, 1):
        instant, slow = pair['instant'], pair['slow']
        everything = max(instant['fast_done'], instant['slow_done'])
        total = instant['fast'] + instant['slow']
        full = total / everything
        fast = slow['fast'] / slow['fast_done']
        rates.append(fast / full)
        times.append(slow['fast_done'] / instant['fast_done'])
        print(f'  round {n}: names at once: all {total} URLs done at '
              f'{everything:.2f} s ({full:.0f}/s), those of the fast names '
              f'at {instant["fast_done"]:.2f} s; the new URL checked '
              f'{instant["new_wait"]:.2f} s after it was registered')
        print(f'           slow names: the {slow["fast"]} URLs of the fast '
              f'names done at {slow["fast_done"]:.2f} s ({fast:.0f}/s), '
              f'the {slow["slow"]} of the slow names from '
              f'{slow["slow_first"]:.2f} to {slow["slow_done"]:.2f} s, the '
              f'new URL checked {slow["new_wait"]:.2f} s after it was '
              f'registered (check-poll {slow["poll"]:g} s); written '
              f'{slow["written"]}')

    def median(values):
        values = sorted(values)
        return (f'median {values[len(values) // 2]:.3f} (rounds: '
                f'{", ".join(f"{v:.3f}" for v in values)})')
    # Without pacing the full rate is the checker's throughput; with
    # pacing each host's rate, so the fast names' finishing time counts.
    print(f'  fast names\' URLs/s with slow names / all URLs/s without: '
          f'{median(rates)}')
    print(f'  fast names done, with slow names / without: {median(times)}')


def start_server(args):
    hosts = len(HOSTS)
    if args.slow_dns:
        hosts = len(NAME_ADDRESSES)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'gocept.lms.checking.tests.server',
         '--first', HOSTS[0], '--count', str(hosts),
         '--port', str(args.port)],
        stdout=subprocess.PIPE, env=child_env())
    line = proc.stdout.readline()
    if b'ready' not in line:
        proc.kill()
        raise RuntimeError('server did not start')
    return proc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--role', choices=['engine', 'raw', 'raw-head',
                                           'setup-db', 'checker-db',
                                           'checker-slow-dns'])
    parser.add_argument('--conf', help='zope.conf (for the db roles)')
    parser.add_argument('--skip-db', action='store_true')
    parser.add_argument('--port', type=int, default=8000)
    parser.add_argument('--count', type=int, default=10000)
    parser.add_argument('--rate', type=float, default=0)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--skip-linkchecker', action='store_true')
    parser.add_argument('--skip-b', action='store_true')
    parser.add_argument('--slow-dns', action='store_true',
                        help='the run with slow names (alone)')
    parser.add_argument('--slow-delay', type=float, default=5.0)
    parser.add_argument('--slow-hosts', type=int, default=SLOW_HOSTS,
                        help='how many of the names are slow (at most %d)'
                        % SLOW_HOSTS)
    parser.add_argument('--fragments', type=float, default=0.0,
                        help='share of URLs with a #fragment in an HTML '
                             'page (--slow-dns only)')
    parser.add_argument('--slow', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        return run_role(args)

    server = start_server(args)
    if args.slow_dns:
        try:
            rounds = slow_dns(args)
        finally:
            server.terminate()
            server.wait()
        return print_slow_dns(rounds, args)
    try:
        report = {}
        rounds = []
        for n in range(args.repeat):
            rounds.append({name: contestant(name, args)
                           for name in ('raw', 'raw-head', 'engine')})
            print(f'round {n + 1}: ' + ', '.join(
                f'{name} {r["rate"]:.0f}/s' for name, r in rounds[-1].items()),
                file=sys.stderr)
        for name in ('raw', 'raw-head', 'engine'):
            report[name] = dict(
                rate=statistics.median(r[name]['rate'] for r in rounds),
                rss=max(r[name]['rss'] for r in rounds),
                states=rounds[0][name]['states'])
        if not args.skip_db:
            report['checker-db'] = checker_with_database(args)
        if not args.skip_linkchecker:
            report['linkchecker'] = linkchecker(args)
            print(f'linkchecker {report["linkchecker"]["rate"]:.0f}/s',
                  file=sys.stderr)
        if not args.skip_b:
            b = contestant('engine', args, rate=1)
            b['limit'] = args.count / len(HOSTS)
            report['b'] = b
            print(f'run B {b["elapsed"]:.1f} s', file=sys.stderr)
    finally:
        server.terminate()
        server.wait()
    print_report(report, args)


def print_report(report, args):
    raw, eng = report['raw'], report['engine']
    print(f'Run A, politeness off, {args.count} URLs, {CONCURRENCY} in '
          f'flight (median of {args.repeat}):')
    print(f'  raw aiohttp keep-alive GET  {raw["rate"]:7.0f} URLs/s  '
          f'peak RSS {raw["rss"]:4.0f} MiB')
    head = report['raw-head']
    print(f'  raw aiohttp keep-alive HEAD {head["rate"]:7.0f} URLs/s  '
          f'peak RSS {head["rss"]:4.0f} MiB')
    print(f'  gocept.lms engine (HEAD)    {eng["rate"]:7.0f} URLs/s  '
          f'peak RSS {eng["rss"]:4.0f} MiB  states {eng["states"]}')
    print(f'  engine / raw GET, raw HEAD  {eng["rate"] / raw["rate"]:7.2f}, '
          f'{eng["rate"] / head["rate"]:.2f}')
    if 'checker-db' in report:
        db = report['checker-db']
        print(f'  bin/checker with ZEO writes {db["rate"]:7.0f} URLs/s  '
              f'peak RSS {db["rss"]:4.0f} MiB (+ its database process '
              f'{db["writer_rss"]:.0f} MiB)  states {db["states"]} '
              f'written {db["written"]}')
        print(f'  with database / raw GET     {db["rate"] / raw["rate"]:7.2f}')
    if 'linkchecker' in report:
        lc = report['linkchecker']
        print(f'  LinkChecker 10.6            {lc["rate"]:7.0f} URLs/s  '
              f'peak RSS {lc["rss"]:4.0f} MiB  states {lc["states"]} '
              f'(wall {lc["elapsed"]:.1f} s)')
        print(f'  engine / LinkChecker        '
              f'{eng["rate"] / lc["rate"]:7.1f}')
        if 'checker-db' in report:
            print(f'  with database / LinkChecker '
                  f'{report["checker-db"]["rate"] / lc["rate"]:7.1f}')
    if 'b' in report:
        b = report['b']
        print(f'Run B, 1 request/s per host: {b["elapsed"]:.1f} s, policy '
              f'limit {b["limit"]:.0f} s, ratio '
              f'{b["elapsed"] / b["limit"]:.3f}, peak RSS {b["rss"]:.0f} MiB')


if __name__ == '__main__':
    sys.exit(main())
