"""Benchmark: sync of one client with 100,000 URLs, 10% changed.

Run from the checkout after buildout:  bin/py benchmarks/sync_large.py

Everything talks over loopback: a real ZEO server (bin/runzeo), the client's
XML-RPC callback in its own process, and bin/sync as cron runs it. The
baseline is the bare XML-RPC transfer of the same payloads (the getAllLinks
answer plus every updateManyStates batch) from this process to the same
callback server, measured in the same run. Figures go to stdout; add them
to benchmarks/RESULTS.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import xmlrpc.client


import gocept.lms.scripts
from gocept.lms.tests import processes


CALLBACK_SERVER = textwrap.dedent('''
    import json, sys, xmlrpc.server
    links_file = sys.argv[1]
    received = [0, 0]
    class Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
        rpc_paths = ('/db/',)
    def xmlrpc_getAllLinks(client_id, password):
        with open(links_file) as f:
            return json.load(f)
    def updateManyStates(client_id, password, states):
        received[0] += 1
        received[1] += len(states)
        return True
    def stats():
        return received
    server = xmlrpc.server.SimpleXMLRPCServer(
        ('127.0.0.1', 0), requestHandler=Handler, logRequests=False)
    for f in (xmlrpc_getAllLinks, updateManyStates, stats):
        server.register_function(f)
    print(server.server_address[1], flush=True)
    server.serve_forever()
''')


def states_for(links):
    return [[url, 'unknown', 'unknown'] for url in links]


def bare_transfer(proxy_url, links, batch_size):
    """What the sync must move at least: one answer, all state batches."""
    started = time.perf_counter()
    proxy = xmlrpc.client.ServerProxy(proxy_url)
    answer = proxy.xmlrpc_getAllLinks('bench', 'pw')
    states = states_for(answer)
    for i in range(0, len(states), batch_size):
        proxy.updateManyStates('bench', 'pw', states[i:i + batch_size])
    return time.perf_counter() - started


def run_sync(conf):
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = processes.run_script('sync', '-C', conf, '--force',
                                  timeout=3600)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        sys.exit('bin/sync failed:\n' + result.stderr[-3000:])
    m = re.search(r'bench: fetched (\d+), added (\d+), removed (\d+), '
                  r'notified (\d+), ([\d.]+) s', result.stderr)
    return dict(wall=wall, own=float(m.group(5)), fetched=int(m.group(1)),
                added=int(m.group(2)), removed=int(m.group(3)),
                notified=int(m.group(4)), maxrss_kb=max(rss, before))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--urls', type=int, default=100000)
    parser.add_argument('--changed', type=float, default=0.10)
    parser.add_argument('--batch-size', type=int, default=1000)
    parser.add_argument('--profile', action='store_true',
                        help='run one more sync in this process under '
                             'cProfile and print where the time went')
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix='lms-bench-sync-')
    links = ['http://host%d.example/page/%d' % (i % 500, i)
             for i in range(args.urls)]
    links_file = os.path.join(tmp, 'links.json')
    with open(links_file, 'w') as f:
        json.dump(links, f)

    zeo = processes.ZEOServer(tmp).start()
    callback = subprocess.Popen(
        [sys.executable, '-c', CALLBACK_SERVER, links_file],
        stdout=subprocess.PIPE, text=True)
    try:
        port = int(callback.stdout.readline())
        callback_url = 'http://127.0.0.1:%d/db/' % port
        conf = processes.write_zope_conf(tmp, zeo, {
            'secret-key-file': os.path.join(tmp, 'secret.key'),
            'callback-batch-size': str(args.batch_size)})

        processes.add_client(conf, 'bench', 'pw', callback_url)

        first = run_sync(conf)

        baselines, syncs = [], []
        for round in range(3):
            # The client's database changes by 10% between two syncs:
            # some links go, new ones come.
            n = int(args.urls * args.changed)
            links = links[n // 2:] + [
                'http://new%d.example/%d/%d' % (i % 500, round, i)
                for i in range(n - n // 2)]
            with open(links_file, 'w') as f:
                json.dump(links, f)
            baselines.append(bare_transfer(
                callback_url, links, args.batch_size))
            syncs.append(run_sync(conf))
        if args.profile:
            import cProfile
            import pstats
            profile = cProfile.Profile()
            profile.runcall(gocept.lms.scripts.sync_main,
                            ['-C', conf, '--force', '-q'])
            pstats.Stats(profile).sort_stats('cumulative').print_stats(40)
    finally:
        callback.terminate()
        zeo.stop()

    baseline = sorted(baselines)[1]
    sync = sorted(syncs, key=lambda s: s['own'])[1]
    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print('urls: %d, changed: %d%%, batch size %d' % (
        args.urls, args.changed * 100, args.batch_size))
    print('first sync (all new): %.2f s own, %.2f s with process start' % (
        first['own'], first['wall']))
    print('bare XML-RPC transfer (median of 3): %.2f s' % baseline)
    print('sync (median of 3): %.2f s own, %.2f s with process start; '
          'added %d, removed %d, notified %d' % (
              sync['own'], sync['wall'], sync['added'], sync['removed'],
              sync['notified']))
    print('ratio sync/transfer: %.2f (own), %.2f (with process start)' % (
        sync['own'] / baseline, sync['wall'] / baseline))
    print('peak RSS of bin/sync: %.0f MB' % (
        max(s['maxrss_kb'] for s in syncs + [first]) / 1024))


if __name__ == '__main__':
    main()
