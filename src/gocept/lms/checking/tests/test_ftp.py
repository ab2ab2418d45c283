import os
import socket
import tempfile
import threading
import unittest

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from gocept.lms.checking import policy
from gocept.lms.checking.tests import helpers


class FTPTests(unittest.IsolatedAsyncioTestCase):

    # zope.testrunner does not call setUpClass; a server per test is cheap.
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        public = os.path.join(self.tmp.name, 'public')
        private = os.path.join(self.tmp.name, 'private')
        os.makedirs(os.path.join(public, 'sub'))
        os.makedirs(os.path.join(public, 'empty'))
        os.makedirs(private)
        with open(os.path.join(public, 'file.txt'), 'wb') as f:
            f.write(b'x' * 1_000_000)
        with open(os.path.join(public, 'sub', 'a.txt'), 'wb') as f:
            f.write(b'a')
        with open(os.path.join(private, 'secret.txt'), 'wb') as f:
            f.write(b'psst')
        authorizer = DummyAuthorizer()
        authorizer.add_anonymous(public)
        authorizer.add_user('alice', 's3cr:t', private, perm='elr')
        handler = type('Handler', (FTPHandler,), {})
        handler.authorizer = authorizer
        handler.banner = 'test ftpd'
        handler.auth_failed_timeout = 0.05
        self.ftpd = FTPServer(('127.0.1.5', 0), handler)
        self.port = self.ftpd.socket.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            self.ftpd.serve_forever(timeout=0.02, blocking=False)

    def tearDown(self):
        self.stopping.set()
        self.thread.join(5)
        self.ftpd.close_all()
        self.tmp.cleanup()

    def url(self, path, auth=''):
        return f'ftp://{auth}127.0.1.5:{self.port}{path}'

    async def outcome(self, url, **kw):
        async with helpers.Checker(helpers.settings(**kw)) as checker:
            return await checker.outcome(url)

    async def test_file_ok_once_download_starts(self):
        o = await self.outcome(self.url('/file.txt'))
        self.assertEqual(('ok', 'FTP file /file.txt available'),
                         (o.kind, o.detail))

    async def test_directories_ok_once_listed(self):
        for path in ('', '/', '/sub/', '/sub', '/empty/'):
            with self.subTest(path=path):
                o = await self.outcome(self.url(path))
                self.assertEqual('ok', o.kind, o)
                self.assertIn('listed', o.detail)

    async def test_missing_file_is_definite(self):
        o = await self.outcome(self.url('/nothere.txt'))
        self.assertEqual('missing', o.kind, o)
        self.assertIn('550', o.detail)
        self.assertEqual('definite', policy.classify(o))

    async def test_credentials_from_url(self):
        o = await self.outcome(self.url('/secret.txt', 'alice:s3cr%3At@'))
        self.assertEqual('ok', o.kind, o)
        o = await self.outcome(self.url('/secret.txt', 'alice:wrong@'))
        self.assertEqual('permanent', o.kind)
        self.assertIn('login failed', o.detail)
        self.assertIn('530', o.detail)

    async def test_refused(self):
        sock = socket.socket()
        sock.bind(('127.0.1.5', 0))
        port = sock.getsockname()[1]
        sock.close()
        o = await self.outcome(f'ftp://127.0.1.5:{port}/')
        self.assertEqual('refused', o.kind, o)

    async def test_guard_applies(self):
        o = await self.outcome(self.url('/file.txt'), allow_cidrs=())
        self.assertEqual('forbidden', o.kind)
        self.assertEqual(
            'forbidden by policy: 127.0.1.5 (loopback)', o.detail)
