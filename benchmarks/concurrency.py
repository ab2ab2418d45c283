"""Benchmark: the whole LMS under concurrent load.

Run from the checkout after buildout:  bin/py benchmarks/concurrency.py

A real ZEO server, bin/web, two bin/checker processes, bin/notifier and
bin/sync --force in a loop, while 20 clients (threads here, each registered
with the LMS and with its own XML-RPC callback on 127.0.0.1) register and
unregister URLs for 60 seconds: calls of 50 URLs and some of 5,000, drawn
partly from a pool all clients share, partly their own, pointing at pages
on 127.0.1.1 to 127.0.1.4 that answer 200 or 404. Then the load stops, the
checkers and the notifier settle, and the figures are compared with what
the clients were told. The machinery is gocept.lms.tests.concurrency, which
test_concurrency.py runs in a shorter form; its docstring lists what is
measured.

Prints a table; exits with status 1 if a figure is off (an error a client
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
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print the table only')
    args = parser.parse_args(argv)
    load = concurrency.Load(**{
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(concurrency.Load)})

    tmp = tempfile.mkdtemp(prefix='lms-bench-concurrency-')

    def say(text):
        if not args.quiet:
            print('# %s' % text, file=sys.stderr, flush=True)

    report = concurrency.Run(load, tmp, say)()
    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print(report.table())
    problems = report.problems()
    if problems:
        print()
        print('OFF:')
        for problem in problems:
            print('  ' + problem)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
