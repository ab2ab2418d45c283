"""Benchmark: the whole LMS under concurrent load, on ZEO and on PostgreSQL.

Run from the checkout after buildout:  bin/py benchmarks/concurrency.py

The database (a real ZEO server over a FileStorage, or a PostgreSQL server
of its own through RelStorage, history-free), two bin/web, two
bin/checker processes, bin/notifier and bin/sync --force in a loop, while
20 clients (threads here, each registered
with the LMS and with its own XML-RPC callback on 127.0.0.1) register and
unregister URLs for 60 seconds: calls of 50 URLs and some of 5,000, drawn
partly from a pool all clients share, partly their own, pointing at pages
on 127.0.1.1 to 127.0.1.4 that answer 200 or 404. Then the load stops, the
checkers and the notifier settle, and the figures are compared with what
the clients were told. The machinery is gocept.lms.tests.concurrency, which
test_concurrency.py runs in a shorter form; its docstring lists what is
measured.

By default it runs once on each database, ZEO first, then PostgreSQL
(--rounds N alternates them N times; --storage runs one only), prints each
run's table, and at the end one line per run: calls and URLs per second,
client-visible errors, process deaths, conflicts retried per process and
acknowledged URLs missing. Exits with status 1 if a figure is off (an error a client
saw, a process that exited, a URL missing or not delivered, a sync run that
did not complete). The logs stay in the directory printed at the end.

Only loopback addresses are ever contacted.
"""

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import tempfile

from gocept.lms.tests import concurrency


def main(argv=None):
    defaults = concurrency.Load()
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0])
    for field in dataclasses.fields(concurrency.Load):
        parser.add_argument(
            '--' + field.name.replace('_', '-'), type=field.type
            if isinstance(field.type, type) else type(field.default),
            default=getattr(defaults, field.name),
            help='default: %(default)s')
    parser.add_argument('--storage', choices=concurrency.STORAGES,
                        help='run on this database only (default: both)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='runs on each database, alternating '
                             '(default: %(default)s)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print the tables only')
    args = parser.parse_args(argv)
    load = concurrency.Load(**{
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(concurrency.Load)})

    storages = ([args.storage] if args.storage else
                list(concurrency.STORAGES)) * args.rounds

    def say(text):
        if not args.quiet:
            print('# %s' % text, file=sys.stderr, flush=True)

    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print('load average before: %s' % ' '.join(
        '%.2f' % value for value in os.getloadavg()))
    reports, failed = [], False
    for storage in storages:
        tmp = tempfile.mkdtemp(prefix='lms-bench-concurrency-%s-' % storage)
        say('run on %s in %s' % (storage, tmp))
        report = concurrency.Run(load, tmp, say, storage=storage)()
        reports.append(report)
        print()
        print(report.table())
        problems = report.problems()
        if problems:
            failed = True
            print()
            print('OFF:')
            for problem in problems:
                print('  ' + problem)
    print()
    print(summary(reports))
    print('load average after: %s' % ' '.join(
        '%.2f' % value for value in os.getloadavg()))
    return 1 if failed else 0


def summary(reports):
    """One line per run: the figures the storages are compared by."""
    lines = ['| database | calls | calls/s | URLs sent | URLs/s | '
             'client-visible errors | process deaths | conflicts retried '
             'per process | acknowledged URLs missing |',
             '|---|---|---|---|---|---|---|---|---|']
    for report in reports:
        figures = report.figures()
        seconds = report.timings.get('load') or float('nan')
        calls = sum(report.calls.values())
        urls = sum(report.urls_sent.values())
        retried = ', '.join(
            '%s %s' % (name, '?' if counters is None or counters[1] is None
                       else counters[1])
            for name, counters in report.counters.items())
        lines.append('| %s | %d | %.1f | %d | %.0f | %s | %s | %s | %s |' % (
            report.storage, calls, calls / seconds, urls, urls / seconds,
            figures['client-visible errors'][0],
            figures['process deaths'][0], retried,
            figures['acknowledged URLs missing'][0]))
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main())
