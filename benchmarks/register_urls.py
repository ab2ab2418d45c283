"""Benchmark: registerURLs over loopback.

Run from the checkout after buildout:  bin/py benchmarks/register_urls.py

The LMS runs as in production: bin/web (waitress, etc/site.zcml) in its own
process, a ZEO server (bin/runzeo, FileStorage) behind it. This process is
the client. Measured: one call of 10,000 URLs and 100 calls of 100 URLs,
each once with URLs the LMS does not know yet (new) and once again with the
same URLs (known, the client is subscribed already).

The baseline, measured in the same run, is a bare XML-RPC endpoint
(xmlrpc.server in its own process) that takes the very same calls and
answers `[]` as the LMS does for new URLs: what parsing and moving the
payload costs without the LMS. Everything talks to 127.0.0.1 only.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import xmlrpc.client


from gocept.lms.tests import processes


ECHO_SERVER = textwrap.dedent('''
    import xmlrpc.server
    class Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
        rpc_paths = ('/lms/',)
        protocol_version = 'HTTP/1.1'  # keep-alive, as waitress does
    def registerURLs(client_id, password, urls):
        return []
    server = xmlrpc.server.SimpleXMLRPCServer(
        ('127.0.0.1', 0), requestHandler=Handler, logRequests=False)
    server.register_function(registerURLs)
    print(server.server_address[1], flush=True)
    server.serve_forever()
''')


def timed_calls(url, batches):
    proxy = xmlrpc.client.ServerProxy(url)
    started = time.perf_counter()
    for batch in batches:
        answer = proxy.registerURLs('bench', 'pw', batch)
        assert isinstance(answer, list)
    elapsed = time.perf_counter() - started
    proxy('close')()
    return elapsed


def url_set(tag, count):
    return ['http://host%d.example/%s/page/%d' % (i % 500, tag, i)
            for i in range(count)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix='lms-bench-register-')
    zeo = processes.ZEOServer(tmp).start()
    web_port = processes.free_port()
    conf = processes.write_zope_conf(tmp, zeo, {
        'secret-key-file': os.path.join(tmp, 'secret.key'),
        'http-address': '127.0.0.1:%d' % web_port,
        'mail-queue': os.path.join(tmp, 'mailqueue')})
    web_log = open(os.path.join(tmp, 'web.log'), 'wb')
    web = echo = None
    try:
        processes.add_client(conf, 'bench', 'pw', 'http://127.0.0.1:9/')

        web = subprocess.Popen(
            [os.path.join(processes.BIN, 'web'), '-C', conf],
            cwd=processes.CHECKOUT, stdout=web_log, stderr=subprocess.STDOUT)
        processes.wait_for_port('127.0.0.1', web_port)
        echo = subprocess.Popen([sys.executable, '-c', ECHO_SERVER],
                                stdout=subprocess.PIPE, text=True)
        echo_url = 'http://127.0.0.1:%s/lms/' % echo.stdout.readline().strip()
        lms_url = 'http://127.0.0.1:%d/lms/' % web_port
        assert xmlrpc.client.ServerProxy(lms_url).checkConnection(
            'bench', 'pw') == 2

        proxy = xmlrpc.client.ServerProxy(lms_url)
        started = time.perf_counter()
        for i in range(200):
            proxy.checkConnection('bench', 'pw')
        calls_per_second = 200 / (time.perf_counter() - started)
        proxy('close')()

        figures = {}
        for round in range(args.rounds):
            for shape, calls, size in [('1 x 10,000', 1, 10000),
                                       ('100 x 100', 100, 100)]:
                urls = url_set('r%d-%d' % (round, calls), calls * size)
                batches = [urls[i:i + size]
                           for i in range(0, len(urls), size)]
                base = timed_calls(echo_url, batches)
                new = timed_calls(lms_url, batches)
                known = timed_calls(lms_url, batches)
                for kind, seconds in [('bare', base), ('new', new),
                                      ('known', known)]:
                    figures.setdefault((shape, kind), []).append(
                        len(urls) / seconds)
    finally:
        for process in (web, echo):
            if process is not None:
                process.terminate()
                process.wait(30)
        web_log.close()
        zeo.stop()

    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s' % ' '.join(os.uname()))
    print('nproc: %d, Python %s' % (os.cpu_count(),
                                    platform.python_version()))
    print('medians of %d rounds, URLs per second' % args.rounds)
    print('checkConnection (a call that writes nothing): %.0f calls/s'
          % calls_per_second)
    print()
    print('| calls | bare XML-RPC | new | new / bare | known | '
          'known / bare |')
    print('|---|---|---|---|---|---|')
    for shape in ['1 x 10,000', '100 x 100']:
        bare = statistics.median(figures[shape, 'bare'])
        new = statistics.median(figures[shape, 'new'])
        known = statistics.median(figures[shape, 'known'])
        print('| %s | %.0f | %.0f | %.2f | %.0f | %.2f |' % (
            shape, bare, new, new / bare, known, known / bare))


if __name__ == '__main__':
    main()
