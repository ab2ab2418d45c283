import socket
import unittest

from gocept.lms.checking.mailto import addresses
from gocept.lms.mailaddress import address_problem
from gocept.lms.checking.tests import helpers


class SyntaxTests(unittest.TestCase):

    def test_valid(self):
        for address in ('info@example.com', 'a.b+c@sub.example.co.uk',
                        '"odd name"@example.org', 'x@[192.0.2.1]',
                        'user@bücher.example', "o'hara@example.ie"):
            with self.subTest(address=address):
                self.assertIsNone(address_problem(address))

    def test_invalid(self):
        for address in ('', 'plain', '@example.com', 'a@', 'a@localhost',
                        'a..b@example.com', '.a@example.com',
                        'a@-example.com', 'a@exa mple.com', 'a b@example.com',
                        'x' * 65 + '@example.com', 'a@[300.1.1.1]',
                        'a@' + 'b' * 64 + '.com', 'a@example.com\n'):
            with self.subTest(address=address):
                self.assertIsNotNone(address_problem(address))

    def test_addresses_from_url(self):
        self.assertEqual(
            ['a@example.com', 'b@example.com', 'c@example.com'],
            addresses('mailto:a@example.com,b%40example.com'
                      '?subject=Hi&cc=c@example.com'))
        self.assertEqual(['x@example.com'],
                         addresses('mailto:?to=x@example.com'))


class CheckTests(unittest.IsolatedAsyncioTestCase):

    async def outcome(self, url, mx=None, **kw):
        async def lookup(domain):
            value = (mx or {}).get(domain)
            if isinstance(value, Exception):
                raise value
            if value is None:
                raise socket.gaierror(socket.EAI_NONAME, 'not known')
            return value
        checker = helpers.Checker(helpers.settings(**kw), mx_lookup=lookup)
        async with checker:
            return await checker.check(url)

    async def test_syntax_only_by_default(self):
        with helpers.no_connect() as attempts:
            result = await self.outcome('mailto:info@nowhere.example')
        self.assertEqual([], attempts)
        self.assertEqual(('ok', 'mail address syntax valid'),
                         (result.state, result.reason))

    async def test_invalid_address_is_unavailable(self):
        result = await self.outcome('mailto:info@@example.com')
        self.assertEqual('unavailable', result.state)
        self.assertIn('invalid mail address', result.reason)
        result = await self.outcome('mailto:')
        self.assertEqual('unavailable', result.state)

    async def test_mx_check(self):
        mx = {'mail.example': True, 'nomail.example': False,
              'flaky.example': socket.gaierror(socket.EAI_AGAIN, 'again')}
        result = await self.outcome('mailto:a@mail.example', mx,
                                    mx_check=True)
        self.assertEqual('ok', result.state)
        result = await self.outcome('mailto:a@gone.example', mx,
                                    mx_check=True)
        self.assertEqual('temporary unavailable', result.state)
        self.assertIn('mail domain gone.example does not exist',
                      result.reason)
        result = await self.outcome('mailto:a@nomail.example', mx,
                                    mx_check=True)
        self.assertIn('has no MX', result.reason)
        result = await self.outcome('mailto:a@flaky.example', mx,
                                    mx_check=True)
        self.assertIn('DNS lookup of flaky.example failed', result.reason)
