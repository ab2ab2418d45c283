"""Benchmark: the admins' pages of the ZMI on a large database.

Run from the checkout after buildout:

    bin/py benchmarks/zmi_pages.py                   # 100,000 URLs
    bin/py benchmarks/zmi_pages.py --size 1000000
    bin/py benchmarks/zmi_pages.py --keep            # keep the work dir

The database is filled by scale.py's fill role (1,000 clients, URLs on
10,000 host:port pairs, packed); then one more client, `big`, subscribes
to the first 100,000 URLs, every hundredth of which turns unavailable
(which also fills the dashboard's recent changes). bin/runzeo and bin/web
then run as in production, and this process times GET requests of each
page over 127.0.0.1 with an admin login: the first request of each page
on a fresh bin/web (cold caches), and the median of five more. Nothing is
checked or synced; all URLs but the unavailable ones are unknown.

Figures go to stdout; nothing is written to RESULTS.md.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import scale  # noqa: E402  (the fill and its data set)
import gocept.lms.tests.processes  # noqa: E402


ADMIN = ('admin', 'benchmark')
BIG = 'big'
BIG_URLS = 100000
UNAVAILABLE_EVERY = 100
WARM = 5

SITE_ZCML = '''\
<configure xmlns="http://namespaces.zope.org/zope">
  <include file="{site}" />
  <principal id="lms.bench.admin" title="Benchmark admin"
             login="{login}" password_manager="{manager}"
             password="{password}" />
  <grant role="zope.Manager" principal="lms.bench.admin" />
</configure>
'''


def role_big(args):
    """Subscribe client `big` to the first URLs; some turn unavailable."""
    import transaction
    import zope.component
    import gocept.lms.client
    from gocept.lms.interfaces import IClientProvider, IURLProvider
    db, connection = scale.open_site(args.conf, args.filestorage)
    urls = zope.component.getUtility(IURLProvider)
    clients = zope.component.getUtility(IClientProvider)
    client = gocept.lms.client.Client(BIG)
    client.contact_name, client.contact_email = 'Big', 'big@example.com'
    client.callback = 'http://127.0.0.1:9/db/'
    clients.add(client)
    keys = list(urls._urls.keys())[:BIG_URLS]
    now = datetime.datetime.now(datetime.timezone.utc)
    for start in range(0, len(keys), 10000):
        chunk = keys[start:start + 10000]
        client.register_urls([urls.by_id(key) for key in chunk])
        urls.record_checks([
            (key, 'unavailable', now, '404 Not Found', None)
            for key in chunk[::UNAVAILABLE_EVERY]])
        transaction.commit()
    sample = keys[len(keys) // 2]
    result = dict(big_urls=len(keys), url_key=sample,
                  url=urls.by_id(sample).url)
    connection.close()
    db.close()
    print(json.dumps(result))


def run_big(data, tmp, conf, datafs):
    result = subprocess.run(
        [os.path.join(scale.BIN, 'py'), os.path.abspath(__file__),
         '--role', 'big', '--conf', conf, '--filestorage', datafs],
        capture_output=True, text=True, cwd=tmp)
    if result.returncode:
        raise RuntimeError(result.stderr[-4000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def get(url):
    auth = 'Basic ' + base64.b64encode(
        ('%s:%s' % ADMIN).encode()).decode()
    request = urllib.request.Request(url, headers={'Authorization': auth})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body = response.read()
    return time.perf_counter() - started, body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=100000)
    parser.add_argument('--clients', type=int, default=1000)
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--workdir', default=None)
    parser.add_argument('--keep', action='store_true')
    parser.add_argument('--role', help=argparse.SUPPRESS)
    parser.add_argument('--conf', help=argparse.SUPPRESS)
    parser.add_argument('--filestorage', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == 'big':
        return role_big(args)

    tmp = tempfile.mkdtemp(prefix='lms-bench-zmi-', dir=args.workdir)
    processes = []
    try:
        figures = run(args, tmp, processes)
    finally:
        for process in reversed(processes):
            scale.stop(process)
        if args.keep:
            print('kept %s' % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(args, figures)


def run(args, tmp, processes):
    # No web server answers these hosts: nothing is checked here.
    data = scale.DataSet(args.size, args.clients, args.hosts, 20000)
    datafs = os.path.join(tmp, 'Data.fs')
    zeo_port, web_port = scale.free_port(), scale.free_port()
    site_zcml = os.path.join(tmp, 'site.zcml')
    with open(site_zcml, 'w') as f:
        f.write(SITE_ZCML.format(
            site=os.path.join(scale.CHECKOUT, 'etc', 'site.zcml'),
            login=ADMIN[0], password=ADMIN[1], manager='Plain Text'))
    with open(os.path.join(tmp, 'zeo.conf'), 'w') as f:
        f.write(scale.ZEO_CONF.format(port=zeo_port, datafs=datafs))
    conf = gocept.lms.tests.processes.write_zope_conf(tmp, zeo_port, {
        'site-name': scale.SITE,
        'http-address': '127.0.0.1:%d' % web_port,
        'public-url': 'http://127.0.0.1:%d/lms/' % web_port,
        'secret-key-file': os.path.join(tmp, 'secret.key'),
        'mail-queue': os.path.join(tmp, 'mailqueue'),
        'check-stats-file': os.path.join(tmp, 'checker-stats.json'),
    }, site_zcml)

    figures = {}
    started = time.perf_counter()
    fill = scale.run_role('fill', data, tmp, '--conf', conf,
                          '--filestorage', datafs,
                          '--callback', 'http://127.0.0.1:9/db/',
                          '--batch', '10000')
    figures['fill_s'] = time.perf_counter() - started
    figures['urls'] = fill['urls']
    started = time.perf_counter()
    big = run_big(data, tmp, conf, datafs)
    figures['big_s'] = time.perf_counter() - started
    figures.update(big)
    figures['datafs_mb'] = os.path.getsize(datafs) / 2 ** 20

    for cmd, log in (
            ([os.path.join(scale.BIN, 'runzeo'), '-C',
              os.path.join(tmp, 'zeo.conf')], 'zeo.log'),
            ([os.path.join(scale.BIN, 'web'), '-C', conf], 'web.log')):
        process = subprocess.Popen(
            cmd, cwd=tmp, stdout=open(os.path.join(tmp, log), 'wb'),
            stderr=subprocess.STDOUT)
        processes.append(process)
        scale.wait_for_port(zeo_port if log == 'zeo.log' else web_port,
                            process)

    base = 'http://127.0.0.1:%d/lms/' % web_port
    host = urllib.parse.urlsplit(big['url'])
    # the host and the first path segment
    prefix = '/'.join(big['url'].split('/')[:4]) + '/'
    pages = [
        ('dashboard', ''),
        ('clients tab, first page', '@@overview.html'),
        ('client page, 100k-URL client', '@@client.html?id=' + BIG),
        ('client page, filter unavailable',
         '@@client.html?id=%s&state=unavailable' % BIG),
        ('client page, filter ok (none: 5,000 looked at)',
         '@@client.html?id=%s&state=ok' % BIG),
        ('URL page', '@@url.html?key=%d' % big['url_key']),
        ('search host (IP, every port)',
         '@@search.html?q=' + host.hostname),
        ('search host:port', '@@search.html?q=' + host.netloc),
        ('search URL prefix', '@@search.html?' + urllib.parse.urlencode(
            {'q': prefix})),
        ('search whole URL', '@@search.html?' + urllib.parse.urlencode(
            {'q': big['url']})),
        ('search, nothing found', '@@search.html?q=nothing.example'),
    ]
    # The login and the process's first request are paid here.
    get(base + '@@search.html')
    timings = []
    for name, path in pages:
        first, body = get(base + path)
        warm = [get(base + path)[0] for _ in range(WARM)]
        # URL rows shown (links to URL pages), a check that it did work
        rows = body.count(b'@@url.html?key=')
        timings.append((name, first, statistics.median(warm), len(body),
                        rows))
    figures['pages'] = timings
    status = scale.proc_status(processes[-1].pid)
    figures['web_rss_mb'] = status['VmRSS'] if status else 0
    return figures


def report(args, figures):
    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print('%s URLs, %d clients + client %s with %s URLs (every %dth '
          'unavailable); fill %.0f s, big client %.0f s; Data.fs %.0f MB'
          % (scale.n(figures['urls']), args.clients, BIG,
             scale.n(figures['big_urls']), UNAVAILABLE_EVERY,
             figures['fill_s'], figures['big_s'], figures['datafs_mb']))
    print()
    print('| page | first request on a fresh bin/web, ms | median of %d '
          'more, ms | HTML kB | links to URLs |' % WARM)
    print('|---|---|---|---|---|')
    for name, first, warm, size, rows in figures['pages']:
        print('| %s | %.0f | %.0f | %.0f | %d |' % (
            name, first * 1000, warm * 1000, size / 1024, rows))
    print()
    print('bin/web RSS after the requests: %.0f MiB' % figures['web_rss_mb'])


if __name__ == '__main__':
    main()
