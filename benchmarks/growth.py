"""Benchmark: how much the database grows per day, and what a pack gives
back, on ZEO (FileStorage) and on PostgreSQL (RelStorage, history-free).

Run from the checkout after buildout:

    bin/py benchmarks/growth.py                      # 100,000 URLs
    bin/py benchmarks/growth.py --sizes 10000,100000,1000000

For each size: a FileStorage filled as benchmarks/scale.py fills it (its
`fill` role: 1,000 clients, every tenth URL with a second client) and
packed. That file is then

* served by a real ZEO server (bin/runzeo), and
* copied into an empty PostgreSQL database with bin/zodbconvert, as
  README.txt tells an operator to move a database (timed), on a
  PostgreSQL server of this run's own (pgserver.py).

On each, two "days" of the LMS's heaviest daily writing: every URL
checked once, its result written by the checker's database work
(scale.py's `write` role, `prepare` variant: checker.DatabaseWork's claim
and write, batches of 1,000). Measured after each day: the FileStorage's
bytes (it appends every new object state until a pack), PostgreSQL's
database size (pg_database_size: a history-free storage rewrites rows in
place, and PostgreSQL reuses the space of the dead rows once autovacuum
has seen them). Then a pack (bin/zeopack -d 0, bin/zodbpack -d 0
etc/relstorage.conf followed by a plain VACUUM) and the sizes after it.

Registrations and syncs add a few bytes per new URL on top of this
(scale.py measures registerURLs' growth per new URL); a day's checks are
what every URL costs every day.

Nothing leaves the machine: the URLs are never fetched, the servers
listen on 127.0.0.1. Figures go to stdout; nothing is written to
RESULTS.md.
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import gocept.lms.pgserver
from gocept.lms.tests import processes

import scale


MB = 2 ** 20


def run(*command, **kw):
    result = subprocess.run(command, capture_output=True, text=True, **kw)
    if result.returncode:
        raise RuntimeError('%s failed: %s' % (
            ' '.join(command), result.stderr[-3000:]))
    return result


def pg_size(database):
    return database.query(
        'SELECT pg_database_size(current_database())')[0][0]


def say(text):
    print('# %s' % text, file=sys.stderr, flush=True)


def days(conf, data, tmp, measure, count=2):
    """`count` days of checks; the size after each, and its seconds."""
    sizes = [measure()]
    seconds = []
    for day in range(count):
        started = time.perf_counter()
        written = scale.run_role('write', data, tmp, '--variant', 'prepare',
                                 '--conf', conf)
        seconds.append(time.perf_counter() - started)
        sizes.append(measure())
        say('day %d: %d results in %.1f s, size %.1f MB' % (
            day + 1, written['results'], seconds[-1], sizes[-1] / MB))
    return sizes, seconds


def measure_size(size, args):
    tmp = tempfile.mkdtemp(prefix='lms-bench-growth-%d-' % size,
                           dir=args.workdir)
    figures = {'urls': size}
    # No traffic goes to these hosts: the URLs are stored, never checked.
    data = scale.DataSet(size, args.clients, args.hosts, 20000)
    product = {'site-name': scale.SITE}
    try:
        datafs = os.path.join(tmp, 'Data.fs')
        conf = processes.write_zope_conf(tmp, processes.free_port(),
                                         product)
        say('%d URLs: filling a FileStorage' % size)
        fill = scale.run_role('fill', data, tmp, '--conf', conf,
                              '--filestorage', datafs,
                              '--callback', 'http://127.0.0.1:9/db/',
                              '--batch', '10000')
        if os.path.exists(datafs + '.old'):
            os.remove(datafs + '.old')
        figures['stored_urls'] = fill['urls']
        filled = os.path.join(tmp, 'filled.fs')
        shutil.copyfile(datafs, filled)

        # ZEO
        zeo = processes.ZEOServer(tmp).start()
        try:
            directory = os.path.join(tmp, 'zeo')
            os.mkdir(directory)
            zeo_conf = processes.write_zope_conf(directory, zeo, product)
            sizes, seconds = days(zeo_conf, data, tmp,
                                  lambda: os.path.getsize(datafs))
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zeopack'), '-d', '0',
                '127.0.0.1:%d' % zeo.port)
            figures['zeo'] = dict(sizes=sizes, seconds=seconds,
                                  pack_seconds=time.perf_counter() - started,
                                  packed=os.path.getsize(datafs))
        finally:
            zeo.stop()

        # PostgreSQL
        server = processes.postgresql(tmp)
        try:
            database = processes.database(server)
            convert = os.path.join(tmp, 'convert.conf')
            with open(convert, 'w') as f:
                f.write('%%import relstorage\n'
                        '<filestorage source>\n  path %s\n</filestorage>\n'
                        % filled)
                f.write(processes.relstorage_section(database, tmp).replace(
                    '<relstorage>', '<relstorage destination>', 1))
            say('%d URLs: bin/zodbconvert into PostgreSQL' % size)
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zodbconvert'), convert)
            converted_in = time.perf_counter() - started
            directory = os.path.join(tmp, 'postgresql-conf')
            os.mkdir(directory)
            pg_conf = processes.write_zope_conf(directory, database, product)
            sizes, seconds = days(pg_conf, data, tmp,
                                  lambda: pg_size(database))
            pack = os.path.join(tmp, 'relstorage.conf')
            with open(pack, 'w') as f:
                f.write(processes.relstorage_section(database, tmp))
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zodbpack'), '-d', '0', pack)
            database.query('VACUUM')
            figures['postgresql'] = dict(
                sizes=sizes, seconds=seconds, convert_seconds=converted_in,
                filled=os.path.getsize(filled),
                pack_seconds=time.perf_counter() - started,
                packed=pg_size(database))
        finally:
            server.stop()
    finally:
        if args.keep:
            say('kept %s' % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return figures


def report(results):
    lines = ['| URLs | database | start MB | after day 1 MB | after day 2 MB '
             '| growth day 1 MB | growth day 2 MB | bytes per URL and day '
             '(day 2) | writing a day s | after pack MB | pack s |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for figures in results:
        for name in ('zeo', 'postgresql'):
            f = figures[name]
            sizes = f['sizes']
            lines.append(
                '| {:,} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {:.1f} '
                '| {:.0f} | {} | {:.1f} | {:.1f} |'.format(
                    figures['stored_urls'], name, sizes[0] / MB,
                    sizes[1] / MB, sizes[2] / MB,
                    (sizes[1] - sizes[0]) / MB, (sizes[2] - sizes[1]) / MB,
                    (sizes[2] - sizes[1]) / figures['stored_urls'],
                    ', '.join('%.0f' % s for s in f['seconds']),
                    f['packed'] / MB, f['pack_seconds']))
    lines.append('')
    for figures in results:
        f = figures['postgresql']
        lines.append('bin/zodbconvert of the packed FileStorage (%.1f MB, '
                     '{:,} URLs) into PostgreSQL: %.0f s'.format(
                         figures['stored_urls'])
                     % (f['filled'] / MB, f['convert_seconds']))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', default='100000')
    parser.add_argument('--clients', type=int, default=1000)
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--workdir', default=None)
    parser.add_argument('--keep', action='store_true')
    args = parser.parse_args(argv)
    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s, PostgreSQL %s' % (
        platform.platform(), os.cpu_count(), platform.python_version(),
        gocept.lms.pgserver.bin_directory().split('/')[-2]))
    print('load average before: %s' % ' '.join(
        '%.2f' % value for value in os.getloadavg()))
    results = [measure_size(int(size), args)
               for size in args.sizes.split(',')]
    print(report(results))
    print('load average after: %s' % ' '.join(
        '%.2f' % value for value in os.getloadavg()))


if __name__ == '__main__':
    main()
