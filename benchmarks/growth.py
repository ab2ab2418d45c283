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

On each, a "day" of the LMS's heaviest daily writing: every URL checked
once, its result written by the checker's database work (scale.py's
`write` role, `day` variant: checkerdb.DatabaseWork's claim and write,
batches of 1,000, every URL once). Measured after it: the FileStorage's
bytes (it appends every new object state until a pack), PostgreSQL's
database size (pg_database_size: a history-free storage rewrites rows in
place, the old versions stay as dead rows until autovacuum marks their
space for reuse; the files do not shrink). Then a pack (bin/zeopack -d 0;
bin/zodbpack -d 0 etc/relstorage.conf followed by a plain VACUUM) and the
size after it.

Only one day: the `day` variant leaves every URL due tomorrow, so a
second run at once would find nothing due.

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

# its neighbour in benchmarks/, whatever directory this runs from
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402


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


def day(conf, data, tmp, measure):
    """A day of checks: sizes before and after, seconds, results."""
    before = measure()
    started = time.perf_counter()
    written = scale.run_role('write', data, tmp, '--variant', 'day',
                             '--conf', conf)
    seconds = time.perf_counter() - started
    after = measure()
    say('a day: %d results in %.1f s, size %.1f MB' % (
        written['results'], seconds, after / MB))
    return dict(sizes=[before, after], seconds=seconds,
                results=written['results'])


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
            figures['zeo'] = day(zeo_conf, data, tmp,
                                 lambda: os.path.getsize(datafs))
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zeopack'), '-d', '0',
                '127.0.0.1:%d' % zeo.port)
            figures['zeo'].update(
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
                f.write(processes.relstorage_section(database).replace(
                    '<relstorage>', '<relstorage destination>', 1))
            say('%d URLs: bin/zodbconvert into PostgreSQL' % size)
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zodbconvert'), convert)
            converted_in = time.perf_counter() - started
            directory = os.path.join(tmp, 'postgresql-conf')
            os.mkdir(directory)
            pg_conf = processes.write_zope_conf(directory, database, product)
            figures['postgresql'] = day(pg_conf, data, tmp,
                                        lambda: pg_size(database))
            pack = os.path.join(tmp, 'relstorage.conf')
            with open(pack, 'w') as f:
                f.write(processes.relstorage_section(database))
            started = time.perf_counter()
            run(os.path.join(processes.BIN, 'zodbpack'), '-d', '0', pack)
            database.query('VACUUM')
            figures['postgresql'].update(
                convert_seconds=converted_in,
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
    lines = ['| URLs | database | start MB | after a day MB | growth MB '
             '| bytes per URL and day | results written | writing s '
             '| after pack MB | pack s |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for figures in results:
        for name in ('zeo', 'postgresql'):
            f = figures[name]
            before, after = f['sizes']
            lines.append(
                '| {:,} | {} | {:.1f} | {:.1f} | {:.1f} | {:.0f} | {:,} '
                '| {:.0f} | {:.1f} | {:.1f} |'.format(
                    figures['stored_urls'], name, before / MB, after / MB,
                    (after - before) / MB,
                    (after - before) / figures['stored_urls'],
                    f['results'], f['seconds'], f['packed'] / MB,
                    f['pack_seconds']))
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
