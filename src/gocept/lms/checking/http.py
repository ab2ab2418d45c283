"""Checking http and https URLs with aiohttp.

`check_http` only reports what happened, as a `policy.Outcome`; it never
decides a state.

Requests: HEAD first, because it costs the server nothing. But HEAD is a
hint, GET decides: servers, CDNs and frameworks that answer HEAD wrongly
(404, 405, 500 ...) although GET works are common enough, so every HEAD
answer that is not a success or a redirect (and a connection dropped on
HEAD) is asked again with GET before it counts. A link that is really gone
costs two requests per check, and the reason says that GET was used. With
a per-host rate, where those two requests cost two of the host's slots, a
host whose HEAD failed is asked with GET straight away for a while
(`get_first_for`, see `engine.HeadDoubts`); the reason says so.

A URL with a #fragment names a place in a page: the page is fetched with
GET and must have an element with that id (or an <a name>), within the
first `anchor_body_cap` bytes (`anchors.py`). URLs that differ only in
their fragment share one fetch (`PageCache`).

A deep link that ends, after redirects, at the home page of a site is
almost always a page that was removed; such answers, and bot walls (see
`bot_wall`), get outcomes of their own for the policy.

Redirects are followed by hand so that every hop passes the address guard
and the per-host pacing, up to `max_redirects` hops; a URL seen twice is a
loop. GET bodies are read up to `body_cap` bytes only: enough to keep a
small answer's connection reusable, never a download.
"""

import asyncio
import email.utils
import errno
import socket
import time

import aiohttp
import yarl

from gocept.lms.checking import anchors
from gocept.lms.checking import guard
from gocept.lms.checking.policy import Outcome
from gocept.lms.checking import policy as p


# Answers worth noting which server sent them: bot walls and rate limits.
_NOTE_SERVER = frozenset([403, 429, 503, 999])

_MAX_URL_IN_REASON = 200


def parse_retry_after(value, now=None):
    """Seconds to wait according to a Retry-After header, or None.

    Both forms are understood: delta-seconds and an HTTP-date.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if now is None:
        now = time.time()
    return max(0.0, when.timestamp() - now)


def _short(url):
    url = str(url)
    if len(url) > _MAX_URL_IN_REASON:
        return url[:_MAX_URL_IN_REASON] + '...'
    return url


class NoPacing:
    """The pacing interface `check_http` and `check_ftp` use.

    `wait(host)` is awaited before a request to `host`, `done(host)` called
    when its answer (or failure) arrived. The engine's implementation
    spaces requests from the end of the previous one, so that the server
    sees the gap whatever the network delays, and remembers the hosts
    whose HEAD failed (`first_method`, `head_failed`).
    """

    async def wait(self, host):
        pass

    def first_method(self, host):
        """The method of the first request to `host`."""
        return 'HEAD'

    def head_failed(self, host):
        """A HEAD request to `host` failed (and is asked again with GET)."""

    def done(self, host):
        pass


NO_PACING = NoPacing()


async def _drain(resp, cap):
    """Read at most `cap` bytes; keep the connection only if that was all."""
    got = 0
    try:
        while got < cap:
            chunk = await resp.content.read(cap - got)
            if not chunk:
                break
            got += len(chunk)
    finally:
        if resp.content.at_eof():
            resp.release()
        else:
            resp.close()


def _describe_error(exc, settings):
    """Map an aiohttp exception to an Outcome."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        os_error = exc.os_error
        if isinstance(os_error, guard.Forbidden):
            return Outcome(p.KIND_FORBIDDEN, str(os_error))
        code = getattr(os_error, 'errno', None)
        host = exc.host
        if code in (socket.EAI_NONAME, getattr(socket, 'EAI_NODATA', -5)):
            return Outcome(p.KIND_NXDOMAIN, f'host name {host} does not exist')
        return Outcome(p.KIND_DNS,
                       f'DNS lookup of {host} failed: {os_error.strerror}'
                       if getattr(os_error, 'strerror', None)
                       else f'DNS lookup of {host} failed: {os_error}')
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError,
                        aiohttp.ClientConnectorSSLError,
                        aiohttp.ClientSSLError,
                        aiohttp.ServerFingerprintMismatch)):
        inner = getattr(exc, 'certificate_error', None) or getattr(
            exc, 'os_error', None) or exc
        return Outcome(p.KIND_TLS, f'TLS error: {inner}')
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Outcome(p.KIND_TIMEOUT,
                       f'connect timeout ({settings.connect_timeout:g} s)')
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return Outcome(p.KIND_TIMEOUT,
                       f'read timeout ({settings.read_timeout:g} s)')
    if isinstance(exc, asyncio.TimeoutError):
        return Outcome(p.KIND_TIMEOUT,
                       f'no complete answer within {settings.total_timeout:g} s')
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        if code == errno.ECONNREFUSED:
            return Outcome(p.KIND_REFUSED,
                           f'connection refused by {exc.host}:{exc.port}')
        if code in (errno.ECONNRESET, errno.EPIPE):
            return Outcome(p.KIND_RESET,
                           f'connection to {exc.host}:{exc.port} reset')
        return Outcome(p.KIND_TRANSIENT,
                       f'cannot connect to {exc.host}:{exc.port}: '
                       f'{exc.os_error.strerror or exc.os_error}')
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome(p.KIND_RESET,
                       'server closed the connection without an answer')
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Outcome(p.KIND_RESET, 'connection cut in the middle of the answer')
    if isinstance(exc, aiohttp.ClientOSError):
        if exc.errno in (errno.ECONNRESET, errno.EPIPE):
            return Outcome(p.KIND_RESET, 'connection reset by the server')
        return Outcome(p.KIND_TRANSIENT, f'network error: {exc}')
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return Outcome(p.KIND_UNSUPPORTED, f'not an http URL: {exc}')
    if isinstance(exc, aiohttp.InvalidURL):
        return Outcome(p.KIND_INVALID, f'invalid URL: {exc}')
    if isinstance(exc, aiohttp.ClientResponseError):
        return Outcome(p.KIND_PROTOCOL,
                       f'malformed answer: {exc.message or exc}')
    if isinstance(exc, aiohttp.ClientError):
        return Outcome(p.KIND_TRANSIENT,
                       f'{type(exc).__name__}: {exc}')
    raise exc


_timeouts = {}


def _timeout(settings):
    key = (settings.total_timeout, settings.connect_timeout,
           settings.read_timeout)
    try:
        return _timeouts[key]
    except KeyError:
        value = _timeouts[key] = aiohttp.ClientTimeout(
            total=key[0], sock_connect=key[1], sock_read=key[2])
        return value


def bot_wall(resp):
    """Whether an answer says "you look like a robot" rather than "gone":
    the bot-wall status codes of the policy, and a 403 or 503 that carries
    Cloudflare's challenge header."""
    if resp.status in p.BOT_WALL_STATUS:
        return True
    return (resp.status in (403, 503) and resp.headers.get(
        'cf-mitigated', '').strip().lower() == 'challenge')


# Paths that are a site's home page.
_HOME_PATHS = frozenset(['', '/', '/index.html', '/index.htm', '/index.php'])


def _redirected_home(start, final):
    return (start.path not in _HOME_PATHS and final.path in _HOME_PATHS)


def _status_text(resp):
    text = f'{resp.status} {resp.reason or ""}'.strip()
    if resp.status in _NOTE_SERVER:
        server = resp.headers.get('Server')
        if server:
            text += f', server: {server[:60]}'
    return text


async def check_http(session, url, settings, address_policy,
                     pace=NO_PACING, pages=None):
    """Check one http(s) URL; return an `Outcome`.

    `session` is an aiohttp ClientSession whose connector resolves through
    a `guard.GuardedResolver`; `address_policy` decides address literals
    (which aiohttp connects to without asking the resolver). `pace` spaces
    the requests per host (see `NoPacing`). With a `PageCache` as `pages`,
    a URL's #fragment is looked for in the page.
    """
    try:
        start = yarl.URL(url)
        # fragments never reach the server; dropping them keeps loop
        # detection exact
        page = start.with_fragment(None)
    except (ValueError, TypeError) as e:
        return Outcome(p.KIND_INVALID, f'invalid URL: {e}')
    anchor, note = anchors.wanted(start.raw_fragment)
    if pages is None or anchor is None:
        outcome = (await _fetch(session, page, settings, address_policy,
                                pace, None))[0]
        return outcome._replace(detail=outcome.detail + note) \
            if note and outcome.kind == p.KIND_HTTP else outcome
    outcome, found = await pages.get(page, lambda: _fetch(
        session, page, settings, address_policy, pace,
        settings.anchor_body_cap))
    return anchors.judge(outcome, found, anchor)


async def _fetch(session, current, settings, address_policy, pace,
                 anchor_cap):
    """Follow `current` to its final answer: `(Outcome, anchors)`, where
    anchors is what `anchors.read` found in the page (read with GET up to
    `anchor_cap` bytes) or None when `anchor_cap` is None or the answer is
    no HTML page."""
    start = current
    seen = {current}
    hops = 0
    method = None if anchor_cap is None else 'GET'
    head_note = ''
    timeout = _timeout(settings)
    while True:
        if current.scheme not in ('http', 'https'):
            return _with_hops(Outcome(
                p.KIND_UNSUPPORTED,
                f'unsupported protocol: {current.scheme[:20]}'), hops,
                current), None
        host = current.raw_host
        if not host:
            return _with_hops(Outcome(p.KIND_INVALID, 'URL without host'),
                              hops, current), None
        try:
            address_policy.check_host(host)
        except guard.Forbidden as e:
            return _with_hops(Outcome(p.KIND_FORBIDDEN, str(e)), hops,
                              current), None
        if method is None:
            method = pace.first_method(host.lower())
            if method == 'GET' and not head_note:
                head_note = '; GET first, HEAD failed on this host lately'
        await pace.wait(host.lower())
        try:
            resp = await session.request(
                method, current, allow_redirects=False, timeout=timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            pace.done(host.lower())
            if isinstance(e, ValueError) and not isinstance(
                    e, aiohttp.ClientError):
                return Outcome(p.KIND_INVALID, f'invalid URL: {e}'), None
            outcome = _describe_error(e, settings)
            if (method == 'HEAD' and outcome.kind == p.KIND_RESET):
                pace.head_failed(host.lower())
                method = 'GET'
                head_note = '; no answer to HEAD, GET used'
                continue
            return _with_hops(outcome, hops, current), None
        pace.done(host.lower())
        status = resp.status
        if method == 'HEAD' and not 200 <= status < 400:
            # HEAD is a hint, GET decides.
            resp.release()
            pace.head_failed(host.lower())
            method = 'GET'
            head_note = f'; HEAD answered {status}, GET used'
            continue
        location = resp.headers.get('Location')
        if 300 <= status < 400 and status != 304 and location:
            if method == 'GET':
                try:
                    await _drain(resp, settings.body_cap)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass    # the Location header is all we need
            else:
                resp.release()
            try:
                target = current.join(yarl.URL(location)).with_fragment(None)
            except (ValueError, TypeError):
                return Outcome(p.KIND_REDIRECT,
                               f'{status} redirect to an invalid URL: '
                               f'{location[:_MAX_URL_IN_REASON]!r}'), None
            hops += 1
            if target in seen:
                return Outcome(p.KIND_REDIRECT,
                               f'redirect loop: hop {hops} leads back to '
                               f'{_short(target)}'), None
            if hops > settings.max_redirects:
                return Outcome(p.KIND_REDIRECT,
                               f'more than {settings.max_redirects} redirects,'
                               f' last to {_short(target)}'), None
            seen.add(target)
            if target.raw_host != current.raw_host and anchor_cap is None:
                method = None
            current = target
            continue
        text = _status_text(resp)
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(resp.headers.get('Retry-After'))
            if retry_after is not None:
                text += f', Retry-After {retry_after:.0f} s'
        found = None
        if method == 'GET':
            try:
                if anchor_cap is not None and 200 <= status < 300 and \
                        anchors.is_html(resp):
                    found = await anchors.read(resp, anchor_cap)
                else:
                    await _drain(resp, settings.body_cap)
            except (aiohttp.ClientPayloadError,
                    aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError) as e:
                outcome = _describe_error(e, settings)
                return _with_hops(outcome._replace(
                    detail=f'{outcome.detail} (after status {status})'),
                    hops, current), None
            except asyncio.TimeoutError:
                # Headers arrived; a body slower than our cap is no failure.
                pass
        else:
            resp.release()
        if bot_wall(resp):
            return _with_hops(Outcome(
                p.KIND_BOT_WALL, f'{text}{head_note}: refused as a robot',
                status, retry_after), hops, current), None
        if hops and 200 <= status < 300 and _redirected_home(start, current):
            return Outcome(
                p.KIND_REDIRECT_HOME,
                f'redirected to the home page of {current.host} '
                f'({_short(current)})', status), None
        return _with_hops(
            Outcome(p.KIND_HTTP, text + head_note, status, retry_after),
            hops, current), found


def _with_hops(outcome, hops, final):
    if not hops:
        return outcome
    word = 'redirect' if hops == 1 else 'redirects'
    return outcome._replace(
        detail=f'{outcome.detail}; after {hops} {word}, '
               f'final URL {_short(final)}')
