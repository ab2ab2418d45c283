"""bin/lms-demo: watch the LMS at work, against a running local LMS.

It plays a content site: a small web site with a dozen pages (good,
redirected, broken, slow) on 127.0.1.1 and 127.0.1.2, and a client whose
XML-RPC callback listens on 127.0.0.1. It registers the client with the
LMS, subscribes the site's links, and prints each state as the LMS pushes
it to the client. The LMS reaches the pages because etc/zope.conf allows
127.0.1.0/24 for checks (a local setting; see `checker-allow-cidrs`).
"""

import argparse
import asyncio
import datetime
import email
import email.policy
import glob
import os
import re
import sys
import threading
import time
import xmlrpc.client
import xmlrpc.server

import aiohttp.web

import gocept.lms.scripts
import gocept.lms.settings


HOSTS = ('127.0.1.1', '127.0.1.2')


def make_site():
    async def good(request):
        return aiohttp.web.Response(text='A page that is fine.')

    async def moved(request):
        raise aiohttp.web.HTTPMovedPermanently('/good')

    async def chain(request):
        n = int(request.match_info['n'])
        raise aiohttp.web.HTTPFound('/good' if n <= 1 else '/chain/%d'
                                    % (n - 1))

    async def slow(request):
        await asyncio.sleep(3)
        return aiohttp.web.Response(text='Worth the wait.')

    def status(code):
        async def handler(request):
            return aiohttp.web.Response(status=code, text='status %d' % code)
        return handler

    app = aiohttp.web.Application()
    app.router.add_route('*', '/good', good)
    app.router.add_route('*', '/moved', moved)
    app.router.add_route('*', '/chain/{n}', chain)
    app.router.add_route('*', '/slow', slow)
    app.router.add_route('*', '/broken', status(404))
    app.router.add_route('*', '/gone', status(410))
    app.router.add_route('*', '/error', status(500))
    app.router.add_route('*', '/busy', status(503))
    return app


def free_port():
    import socket
    with socket.socket() as s:
        s.bind((HOSTS[0], 0))
        return s.getsockname()[1]


class Site:
    """The demo web site, served from a thread."""

    def __init__(self, port):
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        runner = aiohttp.web.AppRunner(make_site(), access_log=None)
        self.loop.run_until_complete(runner.setup())
        for host in HOSTS:
            self.loop.run_until_complete(
                aiohttp.web.TCPSite(runner, host, self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def links(self):
        a, b = ('http://%s:%d' % (h, self.port) for h in HOSTS)
        return [a + '/good', b + '/good', a + '/moved', a + '/chain/3',
                a + '/slow', a + '/broken', b + '/gone', a + '/error',
                b + '/busy', 'ftp://127.0.1.1:%d/nothing-here' % self.port,
                'gopher://old.example.com/', 'mailto:webmaster@example.com']


class Client:
    """The demo client's callback: prints what the LMS tells it."""

    def __init__(self, client_id, links):
        self.client_id = client_id
        self.password = None
        self.links = links
        self.states = {}
        self.started = time.monotonic()

        class Handler(xmlrpc.server.SimpleXMLRPCRequestHandler):
            rpc_paths = ('/callback/',)
        self.server = xmlrpc.server.SimpleXMLRPCServer(
            ('127.0.0.1', 0), requestHandler=Handler, logRequests=False)
        self.server.register_function(self.getAllLinks, 'xmlrpc_getAllLinks')
        self.server.register_function(self.update, 'updateManyStates')
        self.url = 'http://127.0.0.1:%d/callback/' % (
            self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _auth(self, client_id, password):
        if client_id != self.client_id or password != self.password:
            raise ValueError('wrong credentials')

    def getAllLinks(self, client_id, password):
        self._auth(client_id, password)
        return self.links

    def update(self, client_id, password, states):
        self._auth(client_id, password)
        for url, state, reason in states:
            self.states[url] = state
            print('%5.1f s  %-22s %s\n         %s' % (
                time.monotonic() - self.started, state, url, reason),
                flush=True)
        return True


def password_from_queue(queue, client_id, timeout=30):
    """The password from the registration mail, which waits in the local
    mail queue (a local LMS has no SMTP server to send it to)."""
    deadline = time.monotonic() + timeout
    pattern = re.compile(r'Password:\s+(\S+)')
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(queue, '*', '*')):
            with open(path, 'rb') as f:
                message = email.message_from_binary_file(
                    f, policy=email.policy.default)
            body = message.get_body(('plain',))
            text = body.get_content() if body else ''
            if client_id in str(message['Subject']) and \
                    pattern.search(text):
                return pattern.search(text).group(1)
        time.sleep(0.5)
    raise SystemExit('lms-demo: no registration mail for %s in %s'
                     % (client_id, queue))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='lms-demo',
        description='Register a sample client with the running local LMS '
                    '(bin/lms) and show the states of its links as they '
                    'arrive.',
        epilog='Exit status: 0 every state arrived, 1 some did not, 2 the '
               'configuration cannot be read or the LMS cannot be reached.')
    gocept.lms.scripts.add_config_option(parser, 'zope.conf of the LMS')
    parser.add_argument('--timeout', type=float, default=90,
                        metavar='SECONDS',
                        help='how long to wait for the states '
                             '(default: %(default)g)')
    parser.add_argument('--keep', action='store_true',
                        help='leave the demo client registered')
    args = parser.parse_args(argv)
    if not gocept.lms.scripts.configure('lms-demo', args.config):
        return gocept.lms.scripts.EXIT_CONFIG
    settings = gocept.lms.settings.get()
    try:
        with open(settings.admin_secret_file) as f:
            secret = f.read().strip()
    except OSError as e:
        print('lms-demo: cannot read the admin secret (admin-secret-file): '
              '%s; bin/lms writes it on first start' % e, file=sys.stderr)
        return gocept.lms.scripts.EXIT_CONFIG
    try:
        site = Site(free_port())
    except OSError as e:
        print('lms-demo: cannot serve the demo site on %s: %s'
              % (' and '.join(HOSTS), e), file=sys.stderr)
        return gocept.lms.scripts.EXIT_CONFIG
    client_id = 'demo-%s' % datetime.datetime.now().strftime('%H%M%S')
    client = Client(client_id, site.links())
    try:
        return demo(args, settings, secret, client)
    except xmlrpc.client.Fault as e:
        print('lms-demo: the LMS refused: %s' % e.faultString,
              file=sys.stderr)
    except (OSError, xmlrpc.client.Error) as e:
        # Refused, reset, timed out, or an HTTP error.
        print('lms-demo: cannot reach the LMS at %s: %s; is bin/lms '
              'running (bin/lms status)?' % (settings.public_url, e),
              file=sys.stderr)
    return gocept.lms.scripts.EXIT_CONFIG


def demo(args, settings, secret, client):
    lms = xmlrpc.client.ServerProxy(settings.public_url)
    client_id = client.client_id
    print('LMS at %s; demo client %r with callback %s' % (
        settings.public_url, client_id, client.url))
    lms.registerClient(secret, client_id, client.url, 'LMS demo',
                       'demo@example.com')
    client.password = password_from_queue(settings.mail_queue, client_id)
    assert lms.checkConnection(client_id, client.password) == 2
    known = lms.registerURLs(client_id, client.password, client.links)
    print('Registered %d links (%d already known); states as they arrive:'
          % (len(client.links), len(known)), flush=True)
    deadline = time.monotonic() + args.timeout
    while len(client.states) < len(client.links) and \
            time.monotonic() < deadline:
        time.sleep(0.5)
    missing = set(client.links) - set(client.states)
    print('%d of %d states arrived in %.0f s.' % (
        len(client.states), len(client.links),
        time.monotonic() - client.started))
    if not args.keep:
        lms.unregisterClient(secret, client_id)
    if missing:
        print('Still unknown: %s\nIs bin/lms running (bin/lms status)?'
              % ', '.join(sorted(missing)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
