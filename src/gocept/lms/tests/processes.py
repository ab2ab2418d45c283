"""Real processes for end-to-end tests: a ZEO server and the LMS scripts."""

import os
import socket
import subprocess
import sys
import time

import gocept.lms


CHECKOUT = os.path.abspath(os.path.join(
    os.path.dirname(gocept.lms.__file__), '..', '..', '..'))
BIN = os.path.join(CHECKOUT, 'bin')


def free_port(host='127.0.0.1'):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host, port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError('Nothing listens on %s:%s' % (host, port))


class ZEOServer:
    """bin/runzeo over a FileStorage in `directory`, on a free port."""

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.address = ('127.0.0.1', self.port)
        self.process = None

    def start(self):
        self.log = open(os.path.join(self.directory, 'zeo.log'), 'wb')
        self.process = subprocess.Popen(
            [os.path.join(BIN, 'runzeo'),
             '-a', '127.0.0.1:%d' % self.port,
             '-f', os.path.join(self.directory, 'Data.fs')],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(*self.address)
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
            self.log.close()


ZOPE_CONF = '''\
site-definition {checkout}/etc/site.zcml
%import ZEO
<zodb>
  <zeoclient>
    server 127.0.0.1:{port}
    storage 1
  </zeoclient>
</zodb>
<eventlog>
  level INFO
  <logfile>
    path STDERR
  </logfile>
</eventlog>
<product-config gocept.lms>
{product_config}
</product-config>
'''


def write_zope_conf(directory, zeo, product_config):
    path = os.path.join(directory, 'zope.conf')
    with open(path, 'w') as f:
        f.write(ZOPE_CONF.format(
            checkout=CHECKOUT, port=zeo.port,
            product_config='\n'.join(
                '  %s %s' % item for item in sorted(product_config.items()))))
    return path


def run_script(name, *args, timeout=120):
    """Run bin/<name> from the checkout; return the CompletedProcess."""
    return subprocess.run(
        [os.path.join(BIN, name)] + list(args), cwd=CHECKOUT,
        capture_output=True, text=True, timeout=timeout)


class WebServerThread:
    """The checker tests' local HTTP server, in a thread of its own (for
    tests whose own code runs an event loop, such as the checker's)."""

    def __init__(self, hosts=('127.0.1.1',)):
        import asyncio
        import threading
        from gocept.lms.checking.tests.server import LocalHTTPServer
        self.loop = asyncio.new_event_loop()
        self.server = LocalHTTPServer(hosts)
        self.thread = threading.Thread(target=self.loop.run_forever)
        self.thread.daemon = True
        self.thread.start()
        asyncio.run_coroutine_threadsafe(
            self.server.start(), self.loop).result(10)

    def url(self, path, host=None):
        return self.server.url(path, host)

    def stop(self):
        import asyncio
        asyncio.run_coroutine_threadsafe(
            self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
