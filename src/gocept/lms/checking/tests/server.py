"""A small, fast HTTP/1.1 server for the checker's tests and benchmark.

It listens on loopback addresses only, speaks keep-alive, and has an
endpoint for every behaviour the checker must handle. Every request is
logged with its monotonic arrival time and the local address it came in
on, so tests can prove pacing from the server's side.

Run standalone (benchmark): ``python -m gocept.lms.checking.tests.server
--first 127.0.1.1 --count 100 --port 8000``.
"""

import argparse
import asyncio
import email.utils
import ipaddress
import socket
import struct
import sys
import time
import urllib.parse


REASONS = {200: 'OK', 301: 'Moved Permanently', 302: 'Found',
           307: 'Temporary Redirect', 403: 'Forbidden', 404: 'Not Found',
           405: 'Method Not Allowed', 410: 'Gone', 429: 'Too Many Requests',
           500: 'Internal Server Error', 503: 'Service Unavailable'}

HUGE = 200 * 1024 * 1024


def _response(status, headers=(), body=b'', head=False, length=None):
    lines = [f'HTTP/1.1 {status} {REASONS.get(status, "Status")}']
    lines.append(f'Content-Length: {len(body) if length is None else length}')
    lines.extend(f'{k}: {v}' for k, v in headers)
    data = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
    return data if head else data + body


_OK = _response(200, body=b'ok')
PAGE = (b'<!DOCTYPE html><html><body><h1 id="top">A page</h1>'
        b'<p><a name="legacy">old style</a></p>'
        b'<h2 id="caf\xc3\xa9">Caf\xc3\xa9</h2><h2 id="Section 2">Two</h2>'
        b'<img src="x.png" id="figure-1"/></body></html>')
_OK_HEAD = _response(200, head=True)
_NOT_FOUND = _response(404, body=b'not found')
_NOT_FOUND_HEAD = _response(404, head=True)


class _Protocol(asyncio.Protocol):

    def __init__(self, server):
        self.server = server
        self.buffer = b''
        self.busy = False
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.local = transport.get_extra_info('sockname')[0]
        self.server.connections += 1

    def data_received(self, data):
        self.buffer += data
        if not self.busy:
            self._process()

    def connection_lost(self, exc):
        self.transport = None

    def _process(self):
        while self.transport is not None and not self.busy:
            end = self.buffer.find(b'\r\n\r\n')
            if end < 0:
                return
            head = self.buffer[:end].decode('latin-1')
            self.buffer = self.buffer[end + 4:]
            request_line, *header_lines = head.split('\r\n')
            try:
                method, target, _ = request_line.split(' ', 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(':')
                headers[name.strip().lower()] = value.strip()
            self.server.log.append(
                (time.monotonic(), self.local, method, target,
                 headers.get('user-agent')))
            answer = self.server.answer(self, method, target, headers)
            if isinstance(answer, bytes):
                self.transport.write(answer)
            elif answer is None:
                return
            else:
                self.busy = True
                asyncio.ensure_future(self._later(answer))

    async def _later(self, coro):
        try:
            data = await coro
            if data and self.transport is not None:
                self.transport.write(data)
        finally:
            self.busy = False
        self._process()


class LocalHTTPServer:
    """Serve on `hosts` (loopback addresses); port 0 picks one per host."""

    def __init__(self, hosts=('127.0.0.1',), port=0, ssl=None):
        self.hosts = list(hosts)
        self.ssl = ssl
        self.port = port
        self.ports = {}
        self.servers = []
        self.log = []
        self.connections = 0
        self.huge_sent = 0

    async def start(self):
        loop = asyncio.get_running_loop()
        for host in self.hosts:
            assert ipaddress.ip_address(host).is_loopback, host
            server = await loop.create_server(
                lambda: _Protocol(self), host, self.port, backlog=1024,
                reuse_address=True, ssl=self.ssl)
            self.servers.append(server)
            self.ports[host] = server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    def url(self, path='/ok', host=None):
        host = host or self.hosts[0]
        scheme = 'https' if self.ssl else 'http'
        return f'{scheme}://{host}:{self.ports[host]}{path}'

    def requests(self, host=None):
        return [entry for entry in self.log
                if host is None or entry[1] == host]

    def answer(self, proto, method, target, headers):
        path, _, query = target.partition('?')
        head = method == 'HEAD'
        if path == '/ok':
            return _OK_HEAD if head else _OK
        if path == '/notfound':
            return _NOT_FOUND_HEAD if head else _NOT_FOUND
        if path == '/gone':
            return _response(410, head=head)
        if path == '/error':
            return _response(500, head=head)
        if path == '/forbidden':
            return _response(403, [('Server', 'BotWall/1.0')], head=head)
        if path == '/unavailable':
            return _response(503, [('Retry-After', '7200')], head=head)
        if path == '/unavailable-date':
            when = email.utils.formatdate(time.time() + 3 * 86400,
                                          usegmt=True)
            return _response(503, [('Retry-After', when)], head=head)
        if path == '/ratelimit':
            return _response(429, [('Retry-After', '5400')], head=head)
        if path.startswith('/redirect/'):
            n = int(path.rsplit('/', 1)[1])
            to = '/ok' if n <= 0 else f'/redirect/{n - 1}'
            return _response(302, [('Location', to)], head=head)
        if path == '/loop/a':
            return _response(301, [('Location', '/loop/b')], head=head)
        if path == '/loop/b':
            return _response(301, [('Location', '/loop/a')], head=head)
        if path == '/redirect-to':
            to = urllib.parse.unquote(query)
            return _response(307, [('Location', to)], head=head)
        if path == '/head405':
            if head:
                return _response(405, [('Allow', 'GET')], head=True)
            return _OK
        if path in ('/head404', '/head410', '/head500'):
            # servers that break HEAD, although GET works
            if head:
                return _response(int(path[5:]), head=True)
            return _OK
        if path == '/page':
            # an HTML page with places named by id and by <a name>
            return _response(200, [('Content-Type', 'text/html')],
                             PAGE, head=head)
        if path == '/long-page':
            # the anchor comes after more bytes than a small cap reads
            return _response(200, [('Content-Type', 'text/html')],
                             b'<p>' + b'x' * 100000 + b'</p>' + PAGE,
                             head=head)
        if path == '/text':
            return _response(200, [('Content-Type', 'text/plain')],
                             b'no places here', head=head)
        if path == '/old/page':
            # a removed page its site sends home
            return _response(301, [('Location', '/')], head=head)
        if path == '/':
            return _OK_HEAD if head else _OK
        if path == '/robot':
            return _response(999, head=head)
        if path == '/challenge':
            return _response(403, [('cf-mitigated', 'challenge'),
                                   ('Server', 'cloudflare')], head=head)
        if path == '/slow':
            return self._slow(float(query or '0.3'), head)
        if path == '/hang':
            return asyncio.sleep(3600)
        if path == '/close':
            proto.transport.close()
            return None
        if path == '/reset':
            sock = proto.transport.get_extra_info('socket')
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack('ii', 1, 0))
            proto.transport.abort()
            return None
        if path == '/huge':
            if head:
                return _response(405, head=True)
            return self._huge(proto)
        if path == '/cut':
            if head:
                return _response(405, head=True)
            # announces more than it sends, then hangs up
            proto.transport.write(_response(200, length=1000) + b'x' * 10)
            proto.transport.close()
            return None
        return _NOT_FOUND_HEAD if head else _NOT_FOUND

    async def _slow(self, delay, head):
        await asyncio.sleep(delay)
        return _OK_HEAD if head else _OK

    async def _huge(self, proto):
        proto.transport.write(_response(200, length=HUGE, head=True))
        chunk = b'x' * 65536
        sent = 0
        while sent < HUGE and proto.transport is not None:
            proto.transport.write(chunk)
            sent += len(chunk)
            self.huge_sent = sent
            # honour back-pressure so an early close is visible
            while (proto.transport is not None
                   and proto.transport.get_write_buffer_size() > 1 << 20):
                await asyncio.sleep(0.01)
        return None


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--first', default='127.0.1.1')
    parser.add_argument('--count', type=int, default=100)
    parser.add_argument('--port', type=int, default=8000)
    args = parser.parse_args(argv)
    first = ipaddress.ip_address(args.first)
    hosts = [str(first + i) for i in range(args.count)]

    async def serve():
        server = LocalHTTPServer(hosts, args.port)
        await server.start()
        print('ready', flush=True)
        # the parent process ends us; log entries are not needed here
        while True:
            server.log.clear()
            await asyncio.sleep(1)

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    sys.exit(main())
