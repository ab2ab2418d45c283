import asyncio
import os
import socket
import ssl
import subprocess
import tempfile
import unittest

from gocept.lms.checking import engine
from gocept.lms.checking import policy
from gocept.lms.checking.engine import Checker
from gocept.lms.checking.http import parse_retry_after
from gocept.lms.checking.tests import helpers
from gocept.lms.checking.tests.server import LocalHTTPServer


class RetryAfterTests(unittest.TestCase):

    def test_seconds_and_http_date(self):
        self.assertEqual(120.0, parse_retry_after('120'))
        self.assertEqual(
            3600.0, parse_retry_after('Thu, 01 Jan 1970 01:00:00 GMT', 0.0))
        # a date in the past means "now"
        self.assertEqual(0.0, parse_retry_after(
            'Thu, 01 Jan 1970 01:00:00 GMT', 10 ** 9))

    def test_garbage_is_ignored(self):
        for value in (None, '', 'soon', '-5', '1.5e3'):
            self.assertIsNone(parse_retry_after(value))


class HTTPTests(helpers.ServerTestCase):

    dns = {'www.example': '127.0.1.1'}

    async def assertOutcome(self, path, kind, *expected, detail=None):
        """Check the kind, and the status (ints) and detail parts (str)."""
        outcome = await self.outcome(path)
        self.assertEqual(kind, outcome.kind, outcome)
        if detail is not None:
            expected += (detail,)
        for part in expected:
            if isinstance(part, int):
                self.assertEqual(part, outcome.status, outcome)
            else:
                self.assertIn(part, outcome.detail)
        return outcome

    async def test_ok_with_head_only(self):
        await self.assertOutcome('/ok', 'http', 200, '200 OK')
        self.assertEqual([('HEAD', '/ok', 'LMS-test/1')],
                         [e[2:] for e in self.server.requests()])

    async def test_name_resolved_through_the_stub(self):
        port = self.server.ports['127.0.1.1']
        await self.assertOutcome(f'http://www.example:{port}/ok', 'http', 200)
        self.assertEqual(['www.example'], self.resolver.queries)

    async def test_unknown_name_is_nxdomain(self):
        await self.assertOutcome('http://nowhere.example/', 'nxdomain',
                                 detail='nowhere.example does not exist')

    async def test_temporary_dns_failure(self):
        self.resolver.mapping['flaky.example'] = socket.gaierror(
            socket.EAI_AGAIN, 'Temporary failure in name resolution')
        await self.assertOutcome('http://flaky.example/', 'dns',
                                 detail='Temporary failure')

    async def test_not_found_and_gone(self):
        await self.assertOutcome('/notfound', 'http', 404,
                                 '404 Not Found; HEAD answered 404, GET used')
        await self.assertOutcome('/gone', 'http', 410)
        # HEAD is a hint, GET decides: a failure is confirmed with GET
        self.assertEqual(['HEAD', 'GET', 'HEAD', 'GET'],
                         [e[2] for e in self.server.requests()])

    async def test_head_failure_is_not_believed_when_get_works(self):
        for path in ('/head404', '/head410', '/head500'):
            outcome = await self.assertOutcome(path, 'http', 200)
            self.assertEqual(
                f'200 OK; HEAD answered {path[5:]}, GET used',
                outcome.detail)
        result = await self.checker.check(self.server.url('/head404'))
        self.assertEqual('ok', result.state)

    async def test_server_error(self):
        await self.assertOutcome('/error', 'http', 500)

    async def test_503_and_429_with_retry_after(self):
        o = await self.assertOutcome('/unavailable', 'http', 503,
                                     'Retry-After 7200 s')
        self.assertEqual(7200, o.retry_after)
        o = await self.assertOutcome('/ratelimit', 'bot wall', 429)
        self.assertEqual(5400, o.retry_after)
        o = await self.assertOutcome('/unavailable-date', 'http', 503)
        self.assertAlmostEqual(3 * 86400, o.retry_after, delta=5)
        result = await self.checker.check(self.server.url('/ratelimit'))
        self.assertEqual('temporary unavailable', result.state)
        self.assertGreaterEqual(result.next_check, 5400)

    async def test_forbidden_keeps_evidence(self):
        await self.assertOutcome(
            '/forbidden', 'http', 403,
            '403 Forbidden, server: BotWall/1.0; HEAD answered 403, GET used')

    async def test_bot_walls_are_told_apart_from_gone(self):
        await self.assertOutcome(
            '/robot', 'bot wall', 999,
            '999 Status; HEAD answered 999, GET used: refused as a robot')
        await self.assertOutcome(
            '/challenge', 'bot wall', 403, 'server: cloudflare')
        # never red on their own, however often they come
        history = None
        for day in range(30):
            decision = policy.decide(
                policy.Outcome(policy.KIND_BOT_WALL, '999', 999), history,
                day * 86400.0)
            history = decision.history
            self.assertEqual('temporary unavailable', decision.state)

    async def test_deep_link_redirected_home(self):
        outcome = await self.assertOutcome(
            '/old/page', 'redirected home', 200,
            'redirected to the home page of 127.0.1.1')
        self.assertEqual(policy.CLASS_PERMANENT, policy.classify(outcome))
        # a page that moved elsewhere is fine, and so is the home page
        await self.assertOutcome('/redirect/1', 'http', 200)
        await self.assertOutcome('/', 'http', 200)

    async def test_anchors(self):
        for fragment in ('top', 'legacy', 'caf%C3%A9', 'Section%202',
                         'figure-1'):
            outcome = await self.assertOutcome(
                '/page#' + fragment, 'http', 200, 'anchor #')
            self.assertIn('found', outcome.detail)
        outcome = await self.assertOutcome(
            '/page#nowhere', 'no anchor', 200,
            'anchor #nowhere not found (200 OK)')
        result = await self.checker.check(self.server.url('/page#nowhere'))
        self.assertEqual('temporary unavailable', result.state)
        # one GET for all of them: the page is fetched once
        self.assertEqual([('GET', '/page')],
                         [e[2:4] for e in self.server.requests()])

    async def test_anchors_that_are_not_checked(self):
        await self.assertOutcome('/text#x', 'http', 200,
                                 'anchor #x not checked (not an HTML page)')
        await self.assertOutcome('/page#:~:text=A%20page', 'http', 200,
                                 '200 OK; text fragment not checked')
        checker = Checker(helpers.settings(anchor_body_cap=1000),
                          resolver=self.resolver)
        async with checker:
            outcome = await checker.outcome(self.server.url('/long-page#top'))
        self.assertEqual('http', outcome.kind, outcome)
        self.assertIn('anchor #top not checked (not in the first 1000 bytes)',
                      outcome.detail)
        checker = Checker(helpers.settings(check_fragments=False),
                          resolver=self.resolver)
        async with checker:
            outcome = await checker.outcome(self.server.url('/page#nowhere'))
        self.assertEqual(('http', '200 OK'), (outcome.kind, outcome.detail))

    async def test_head_refused_falls_back_to_get(self):
        await self.assertOutcome('/head405', 'http', 200,
                                 '200 OK; HEAD answered 405, GET used')
        self.assertEqual(['HEAD', 'GET'],
                         [e[2] for e in self.server.requests()])

    async def test_redirect_chain(self):
        o = await self.assertOutcome('/redirect/3', 'http', 200)
        self.assertEqual(
            '200 OK; after 4 redirects, final URL ' + self.server.url('/ok'),
            o.detail)

    async def test_redirect_limit(self):
        await self.assertOutcome('/redirect/12', 'redirect',
                                 detail='more than 10 redirects')

    async def test_redirect_loop(self):
        await self.assertOutcome(
            '/loop/a', 'redirect',
            'redirect loop: hop 2 leads back to ' + self.server.url('/loop/a'))

    async def test_redirect_to_other_scheme(self):
        o = await self.assertOutcome('/redirect-to?gopher://x.example/',
                                     'unsupported')
        self.assertIn('after 1 redirect', o.detail)

    async def test_slow_answer_within_timeout(self):
        await self.assertOutcome('/slow?0.2', 'http', 200)

    async def test_read_timeout(self):
        # The detail names the limit that ended the check: the read
        # timeout, not the total one (3 s in these tests), nor the server.
        await self.assertOutcome('/hang', 'timeout',
                                 detail='read timeout (0.5 s)')

    async def test_connect_timeout(self):
        # A listener that never accepts, its queue filled: SYNs are dropped.
        listener = socket.socket()
        listener.bind(('127.0.1.2', 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = socket.create_connection(('127.0.1.2', port))
        try:
            await self.assertOutcome(f'http://127.0.1.2:{port}/', 'timeout',
                                     detail='connect timeout (0.5 s)')
        finally:
            filler.close()
            listener.close()

    async def test_connection_refused(self):
        sock = socket.socket()
        sock.bind(('127.0.1.3', 0))
        port = sock.getsockname()[1]
        sock.close()
        await self.assertOutcome(f'http://127.0.1.3:{port}/', 'refused',
                                 detail='connection refused by 127.0.1.3')

    async def test_closed_without_answer(self):
        await self.assertOutcome(
            '/close', 'reset',
            'server closed the connection without an answer')
        # HEAD and then GET were tried; aiohttp repeats an idempotent
        # request once when the connection drops (RFC 9112, 9.3.1).
        methods = [e[2] for e in self.server.requests()]
        self.assertEqual('HEAD', methods[0])
        self.assertEqual('GET', methods[-1])
        self.assertLessEqual(len(methods), 4)

    async def test_reset(self):
        await self.assertOutcome('/reset', 'reset', 'reset')

    async def test_cut_mid_answer(self):
        await self.assertOutcome('/cut', 'reset', 'cut in the middle')

    async def test_huge_body_is_not_downloaded(self):
        await self.assertOutcome('/huge', 'http', 200)
        await asyncio.sleep(0.1)
        # what the server pushed into socket buffers, not what it had
        self.assertLess(self.server.huge_sent, 50 * 1024 * 1024)

    async def test_connections_are_reused(self):
        results = [r async for r in self.checker.check_many(
            (n, self.server.url('/ok'), None) for n in range(200))]
        self.assertEqual(200, len(results))
        self.assertLessEqual(self.server.connections, 20)

    async def test_invalid_url(self):
        o = await self.outcome('http:///nohost')
        self.assertEqual('invalid', o.kind)


class TLSTests(unittest.IsolatedAsyncioTestCase):

    async def asyncSetUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        key = os.path.join(self.tmp.name, 'key.pem')
        cert = os.path.join(self.tmp.name, 'cert.pem')
        subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
             '-keyout', key, '-out', cert, '-days', '1', '-subj',
             '/CN=self-signed.example'],
            check=True, capture_output=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.server = await LocalHTTPServer(['127.0.1.4'], ssl=context).start()

    async def asyncTearDown(self):
        await self.server.stop()
        self.tmp.cleanup()

    async def test_untrusted_certificate(self):
        async with helpers.Checker(helpers.settings()) as checker:
            result = await checker.check(self.server.url('/ok'))
            outcome = await checker.outcome(self.server.url('/ok'))
        self.assertEqual('tls', outcome.kind)
        self.assertIn('TLS error', outcome.detail)
        self.assertIn('certificate verify failed', outcome.detail)
        self.assertEqual('temporary unavailable', result.state)
        self.assertEqual(policy.History, type(result.history))


class GetFirstTests(helpers.ServerTestCase):
    """With a per-host rate, a host whose HEAD failed is asked with GET
    first for a while: one paced request per link instead of two."""

    hosts = ('127.0.1.1', '127.0.1.2')

    def checker_settings(self):
        return helpers.settings(per_host_rate=50)

    def methods(self, host='127.0.1.1'):
        return [(e[2], e[3]) for e in self.server.requests(host)]

    async def test_after_a_failed_head_the_host_gets_get(self):
        outcome = await self.outcome('/notfound')
        self.assertEqual('404 Not Found; HEAD answered 404, GET used',
                         outcome.detail)
        outcome = await self.outcome('/ok')
        self.assertEqual('200 OK; GET first, HEAD failed on this host lately',
                         outcome.detail)
        outcome = await self.outcome('/gone')
        self.assertEqual(410, outcome.status)
        self.assertEqual([('HEAD', '/notfound'), ('GET', '/notfound'),
                          ('GET', '/ok'), ('GET', '/gone')], self.methods())
        # another host is not doubted
        await self.outcome(self.server.url('/ok', '127.0.1.2'))
        self.assertEqual([('HEAD', '/ok')], self.methods('127.0.1.2'))

    async def test_a_server_that_breaks_head_is_doubted_too(self):
        await self.outcome('/head404')
        await self.outcome('/ok')
        self.assertEqual([('HEAD', '/head404'), ('GET', '/head404'),
                          ('GET', '/ok')], self.methods())

    async def test_switched_off(self):
        await self.checker.close()
        self.checker = engine.Checker(
            helpers.settings(per_host_rate=50, get_first_for=0),
            resolver=self.resolver)
        async with self.checker:
            await self.outcome('/notfound')
            await self.outcome('/ok')
        self.assertEqual([('HEAD', '/notfound'), ('GET', '/notfound'),
                          ('HEAD', '/ok')], self.methods())

    def test_doubts_wear_off(self):
        doubts = engine.HeadDoubts(600)
        doubts.add('www.example', 1000.0)
        self.assertTrue(doubts.doubted('www.example', 1599.0))
        self.assertFalse(doubts.doubted('www.example', 1600.0))
        self.assertFalse(doubts.doubted('other.example', 1000.0))
