import unittest

from gocept.lms.checking import guard
from gocept.lms.checking.guard import AddressPolicy, Forbidden
from gocept.lms.checking.tests import helpers
from gocept.lms.checking.tests.server import LocalHTTPServer


REFUSED_LITERALS = [
    '127.0.0.1', '127.1', '2130706433', '0177.0.0.1', '0x7f000001',
    '0x7f.0.0.1', '[::ffff:127.0.0.1]', '::ffff:7f00:1', '[::1]',
    '0.0.0.0', '0', '10.0.0.1', '172.16.5.4', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '100.127.255.254', '198.18.0.1',
    '198.19.255.255', '240.0.0.1', '255.255.255.255', '224.0.0.251',
    '239.1.2.3', '192.0.2.1', 'fc00::1', 'fd12:3456::1', 'fe80::1',
    'fe80::1%eth0', 'ff02::1', '::ffff:10.0.0.1', '64:ff9b::10.0.0.1',
    '2002:c0a8:0101::1', '::127.0.0.1', '2001:db8::1',
]

# Only decided, never contacted.
PUBLIC_LITERALS = ['8.8.8.8', '93.184.216.34', '2606:4700::1111',
                   '64:ff9b::808:808', '1.1']


class AddressPolicyTests(unittest.TestCase):

    def test_refuses_non_public_addresses_in_every_spelling(self):
        policy = AddressPolicy()
        for host in REFUSED_LITERALS:
            with self.subTest(host=host):
                with self.assertRaises(Forbidden) as caught:
                    policy.check_host(host)
                self.assertTrue(
                    str(caught.exception).startswith('forbidden by policy: '))

    def test_alternate_spellings_name_the_real_address(self):
        policy = AddressPolicy()
        for host in ('127.1', '2130706433', '0177.0.0.1', '0x7f000001'):
            with self.assertRaises(Forbidden) as caught:
                policy.check_host(host)
            self.assertEqual(
                f'forbidden by policy: {host} means 127.0.0.1 (loopback)',
                str(caught.exception))

    def test_public_addresses_pass(self):
        policy = AddressPolicy()
        for host in PUBLIC_LITERALS:
            with self.subTest(host=host):
                self.assertIsNotNone(policy.check_host(host))

    def test_names_are_left_to_the_resolver(self):
        self.assertIsNone(AddressPolicy().check_host('www.example.org'))

    def test_allow_list_overrides(self):
        policy = AddressPolicy('127.0.1.0/24, fd00:1::/64')
        self.assertIsNotNone(policy.check_host('127.0.1.200'))
        self.assertIsNotNone(policy.check_host('fd00:1::5'))
        with self.assertRaises(Forbidden):
            policy.check_host('127.0.0.2')
        with self.assertRaises(Forbidden):
            policy.check_host('127.0.2.1')

    def test_a_name_with_any_forbidden_address_is_refused(self):
        policy = AddressPolicy()
        with self.assertRaises(Forbidden) as caught:
            policy.check_resolved('mixed.example', [
                guard.parse_address('93.184.216.34'),
                guard.parse_address('192.168.0.1')])
        self.assertIn('192.168.0.1 (private)', str(caught.exception))

    def test_bad_allow_list_fails_early(self):
        with self.assertRaises(ValueError):
            helpers.settings(allow_cidrs=('127.0.1.0/33',))


class NoPacketLeavesTests(unittest.IsolatedAsyncioTestCase):
    """Names resolving to forbidden addresses, and forbidden literals, are
    refused before any connect is attempted."""

    dns = {
        'intranet.example': '10.1.2.3',
        'metadata.example': '169.254.169.254',
        'cgnat.example': '100.64.7.7',
        'mixed.example': ['93.184.216.34', '192.168.0.1'],
        'ula.example': 'fd00::1',
        'mapped.example': '::ffff:127.0.0.1',
        'loopback.example': '127.0.0.1',
        'allowed.example': '127.0.1.1',
    }

    async def test_forbidden_targets_are_never_connected(self):
        urls = [f'{scheme}://{name}/' for name in self.dns
                if name != 'allowed.example'
                for scheme in ('http', 'https', 'ftp')]
        urls += [f'http://{host}/' for host in
                 ('127.1', '2130706433', '0177.0.0.1', '0x7f000001',
                  '[::ffff:127.0.0.1]', '[fe80::1]', '0.0.0.0', '100.64.0.1',
                  '[fc00::1]', '198.18.0.1', '240.0.0.1', '10.0.0.1:8080')]
        # A redirect chain cannot start from an allowed host without a
        # connection; redirects are covered with real sockets below.
        checker = helpers.Checker(
            helpers.settings(), resolver=guard.StaticResolver(self.dns))
        async with checker:
            with helpers.no_connect() as attempts:
                results = [r async for r in checker.check_many(
                    (url, url, None) for url in urls)]
        self.assertEqual([], attempts)
        self.assertEqual(len(urls), len(results))
        for result in results:
            with self.subTest(url=result.key):
                self.assertEqual('unsupported protocol', result.state)
                self.assertTrue(
                    result.reason.startswith('forbidden by policy: '),
                    result.reason)

    async def test_the_connect_patch_really_bites(self):
        # Without this, a broken patch would make the test above vacuous.
        checker = helpers.Checker(
            helpers.settings(), resolver=guard.StaticResolver(self.dns))
        async with checker:
            with helpers.no_connect() as attempts:
                result = await checker.check('http://allowed.example:9/')
        self.assertEqual(1, len(attempts))
        self.assertNotEqual('ok', result.state)


class RealSocketTests(helpers.ServerTestCase):
    """127.0.0.2 is loopback but outside the allow-list: refused, although a
    server listens there."""

    dns = {'two.example': '127.0.0.2'}

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.forbidden = await LocalHTTPServer(['127.0.0.2']).start()

    async def asyncTearDown(self):
        await self.forbidden.stop()
        await super().asyncTearDown()

    async def test_direct_by_name_and_by_redirect(self):
        port = self.forbidden.ports['127.0.0.2']
        direct = self.forbidden.url('/ok')
        by_name = f'http://two.example:{port}/ok'
        redirect = self.server.url('/redirect-to?' + direct)
        redirect_name = self.server.url('/redirect-to?' + by_name)
        for url in (direct, by_name, redirect, redirect_name):
            with self.subTest(url=url):
                result = await self.checker.check(url)
                self.assertEqual('unsupported protocol', result.state)
                self.assertIn('forbidden by policy', result.reason)
        self.assertEqual(0, self.forbidden.connections)
        self.assertEqual(2, len(self.server.requests()))
        result = await self.checker.check(redirect)
        self.assertIn('after 1 redirect, final URL ' + direct, result.reason)

    async def test_reachable_once_allow_listed(self):
        checker = helpers.Checker(helpers.settings(
            allow_cidrs=('127.0.0.2/32',)))
        async with checker:
            result = await checker.check(self.forbidden.url('/ok'))
        self.assertEqual('ok', result.state)
        self.assertEqual(1, self.forbidden.connections)


class RebindingTests(unittest.IsolatedAsyncioTestCase):

    async def test_every_answer_is_checked_and_returned_as_checked(self):
        # A name that answers allowed first and forbidden next (DNS
        # rebinding): aiohttp connects to what `resolve` returns, and each
        # answer passes the policy before it is returned.
        answers = iter(['127.0.1.1', '127.0.0.2'])

        class Flipping(guard.StaticResolver):
            async def resolve(self, host, port=0, family=0):
                self.mapping[host] = next(answers)
                return await super().resolve(host, port, family)

        resolver = guard.GuardedResolver(
            AddressPolicy('127.0.1.0/24'), Flipping({}))
        first = await resolver.resolve('flip.example', 80)
        self.assertEqual(['127.0.1.1'], [i['host'] for i in first])
        with self.assertRaises(Forbidden) as caught:
            await resolver.resolve('flip.example', 80)
        self.assertEqual(
            'forbidden by policy: flip.example resolves to 127.0.0.2 '
            '(loopback)', str(caught.exception))
