"""Shared fixtures for the checking tests: loopback only, stubbed DNS."""

import asyncio
import contextlib
import socket
import unittest
import unittest.mock

from gocept.lms.checking.engine import Checker
from gocept.lms.checking.settings import CheckerSettings
from gocept.lms.checking.guard import StaticResolver, parse_address
from gocept.lms.checking.tests.server import LocalHTTPServer


ALLOW = ('127.0.1.0/24',)


def settings(**kw):
    values = dict(allow_cidrs=ALLOW, per_host_rate=0, connect_timeout=0.5,
                  read_timeout=0.5, total_timeout=3, user_agent='LMS-test/1')
    values.update(kw)
    return CheckerSettings(**values)


@contextlib.contextmanager
def no_connect():
    """Make every outgoing connect fail the test before a packet leaves.

    Yields the list of attempted addresses (for asserting it stays empty).
    """
    attempts = []

    def refuse(*args, **kw):
        attempts.append(args)
        raise AssertionError(f'connect attempted: {args!r}')

    async def refuse_async(*args, **kw):
        refuse(*args, **kw)

    loop = asyncio.get_running_loop()
    with unittest.mock.patch.object(socket.socket, 'connect', refuse), \
            unittest.mock.patch.object(socket.socket, 'connect_ex', refuse), \
            unittest.mock.patch.object(loop, 'sock_connect', refuse_async), \
            unittest.mock.patch.object(
                loop, 'create_connection', refuse_async):
        yield attempts


@contextlib.contextmanager
def no_real_dns():
    """Make every lookup of a name in the real DNS fail (address literals,
    which getaddrinfo answers without DNS, pass).

    Yields the list of names looked up, for asserting it stays empty: the
    checker turns the failure into a result, so the test must look.
    """
    lookups = []
    real = socket.getaddrinfo

    def refuse(host, *args, **kw):
        text = host.decode() if isinstance(host, bytes) else str(host)
        if parse_address(text) is None:
            lookups.append(text)
            raise AssertionError(f'real DNS lookup of {text!r}')
        return real(host, *args, **kw)

    with unittest.mock.patch.object(socket, 'getaddrinfo', refuse):
        yield lookups


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """A local HTTP server on 127.0.1.1 and a checker allowed to reach it.

    Names resolve through `dns` only; a real DNS lookup fails the test.
    """

    hosts = ('127.0.1.1',)
    dns = {}
    #: seconds some names take to resolve
    dns_delays = {}

    def checker_settings(self):
        return settings()

    async def asyncSetUp(self):
        dns = contextlib.ExitStack()
        self.real_lookups = dns.enter_context(no_real_dns())
        self.addCleanup(dns.close)
        self.server = await LocalHTTPServer(self.hosts).start()
        self.resolver = StaticResolver(self.dns, self.dns_delays)
        self.checker = Checker(self.checker_settings(), resolver=self.resolver)
        await self.checker.open()

    async def asyncTearDown(self):
        await self.checker.close()
        await self.server.stop()
        self.assertEqual([], self.real_lookups)

    async def outcome(self, path_or_url):
        url = (self.server.url(path_or_url) if path_or_url.startswith('/')
               else path_or_url)
        return await self.checker.outcome(url)
