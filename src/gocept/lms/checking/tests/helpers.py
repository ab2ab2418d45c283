"""Shared fixtures for the checking tests: loopback only, stubbed DNS."""

import asyncio
import contextlib
import socket
import unittest
import unittest.mock

from gocept.lms.checking.engine import Checker, CheckerSettings
from gocept.lms.checking.guard import StaticResolver
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


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """A local HTTP server on 127.0.1.1 and a checker allowed to reach it."""

    hosts = ('127.0.1.1',)
    dns = {}

    def checker_settings(self):
        return settings()

    async def asyncSetUp(self):
        self.server = await LocalHTTPServer(self.hosts).start()
        self.resolver = StaticResolver(self.dns)
        self.checker = Checker(self.checker_settings(), resolver=self.resolver)
        await self.checker.open()

    async def asyncTearDown(self):
        await self.checker.close()
        await self.server.stop()

    async def outcome(self, path_or_url):
        url = (self.server.url(path_or_url) if path_or_url.startswith('/')
               else path_or_url)
        return await self.checker.outcome(url)
