"""The checking engine: many URLs at once, politely.

Typical use by the checker process, once per batch of due URLs::

    async with Checker(settings) as checker:
        async for result in checker.check_many(items):
            ...  # collect, write to the database in batches

`items` is an iterable of ``(key, url, history)``; each `Result` carries the
key back together with the new state, reason, seconds until the next check,
the history to store and when the check finished. Results come in the order
the checks finish. A `Checker` may be kept open across batches: it keeps
the keep-alive connections and the per-host pacing between them.

Pacing: with `per_host_rate` set, requests to one host (redirect hops and
GET-after-HEAD included) start at least 1/rate seconds apart. URLs are
handed to the workers host by host in the order their host becomes free, so
a worker never sits on a URL whose host is busy while other hosts could be
served.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import datetime
import heapq
import logging
import re
import time

import aiohttp
import yarl

from gocept.lms.checking import guard
from gocept.lms.checking import policy
from gocept.lms.checking.ftp import check_ftp
from gocept.lms.checking.http import check_http, NO_PACING
from gocept.lms.checking.mailto import check_mailto


log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    'gocept.lms/4 (link monitoring server; +https://github.com/gocept)')


@dataclasses.dataclass(frozen=True)
class CheckerSettings(policy.PolicySettings):
    """Everything the checker can be told; times in seconds.

    The policy knobs (`interval`, `retry_interval`, `min_interval`,
    `max_retry_after`, `definite_failures`, `definite_span`, `failures`,
    `failure_span`) come from `policy.PolicySettings`.
    """

    #: checks in flight at the same time
    concurrency: int = 20
    #: requests per second to one host; 0 turns pacing off
    per_host_rate: float = 1.0
    #: TCP connect (and TLS handshake start) limit
    connect_timeout: float = 10.0
    #: limit for every single read from the socket
    read_timeout: float = 15.0
    #: limit for one request from connect to the end of the headers
    total_timeout: float = 60.0
    #: redirect hops followed before giving up
    max_redirects: int = 10
    #: bytes of a GET body read at most (to keep small answers' connections)
    body_cap: int = 16384
    user_agent: str = DEFAULT_USER_AGENT
    #: CIDR ranges allowed although the guard refuses them otherwise
    allow_cidrs: tuple = ()
    #: check that mailto domains take mail (DNS); off: syntax only
    mx_check: bool = False
    #: seconds an idle keep-alive connection is kept
    keepalive_timeout: float = 30.0
    #: seconds a (checked) DNS answer is reused
    dns_cache_ttl: float = 60.0

    def __post_init__(self):
        # Validate early: a bad CIDR should fail at start, not mid-batch.
        object.__setattr__(self, 'allow_cidrs', tuple(
            str(n) for n in guard.parse_cidrs(self.allow_cidrs)))
        if self.concurrency < 1:
            raise ValueError('concurrency must be at least 1')
        if self.per_host_rate < 0:
            raise ValueError('per_host_rate must not be negative')

    @classmethod
    def from_dict(cls, mapping, prefix=''):
        """Build settings from strings (zope.conf product configuration).

        Keys are the field names, with dashes or underscores. With a
        `prefix` (``checker-``, say) only keys starting with it are used
        and an unknown one is an error; without, unknown keys are ignored
        so the whole product configuration can be passed. Times accept the
        suffixes s, m, h, d (``6h``); booleans on/off, true/false, yes/no,
        1/0; `allow_cidrs` a list separated by spaces or commas.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, raw in mapping.items():
            if prefix:
                if not key.startswith(prefix):
                    continue
                key = key[len(prefix):]
            name = key.replace('-', '_')
            if name not in fields:
                if prefix:
                    raise ValueError(f'unknown checker setting: {key}')
                continue
            values[name] = _convert(fields[name], raw)
        return cls(**values)


_DURATION = re.compile(r'^\s*([0-9.]+)\s*([smhd]?)\s*$')
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}
_BOOLS = {'on': True, 'true': True, 'yes': True, '1': True,
          'off': False, 'false': False, 'no': False, '0': False}


def _convert(field, raw):
    if not isinstance(raw, str):
        return raw
    kind = field.type
    if kind is bool:
        try:
            return _BOOLS[raw.strip().lower()]
        except KeyError:
            raise ValueError(f'{field.name}: not a boolean: {raw!r}')
    if kind is int:
        return int(raw)
    if kind is float:
        match = _DURATION.match(raw)
        if not match:
            raise ValueError(f'{field.name}: not a number: {raw!r}')
        return float(match.group(1)) * _UNITS[match.group(2)]
    if kind is tuple:
        return tuple(raw.replace(',', ' ').split())
    return raw


class Result(collections.namedtuple(
        'Result', 'key state reason next_check history checked_at')):
    """One finished check.

    key
        as passed in
    state, reason
        for the URL object (`state` one of the protocol's state strings)
    next_check
        seconds from `checked_at` until the URL is due again
    history
        the `policy.History` to store on the URL (None once it is fine)
    checked_at
        timezone-aware UTC datetime of the end of the check
    """

    __slots__ = ()


class Pacer:
    """Hands out request slots per host, `interval` seconds apart."""

    def __init__(self, interval):
        self.interval = interval
        self._next_free = {}

    def delay(self, host, now):
        return max(0.0, self._next_free.get(host, 0.0) - now)

    def reserve(self, host, now):
        """Take the next slot of `host`; return how long to wait for it."""
        start = max(now, self._next_free.get(host, 0.0))
        self._next_free[host] = start + self.interval
        if len(self._next_free) > 50000:
            # Hosts whose slot has passed need no memory.
            self._next_free = {h: t for h, t in self._next_free.items()
                               if t > now}
        return start - now

    def done(self, host, now):
        """A request to `host` ended: the next starts an interval later.

        Spacing from the end, not only from the start, keeps the gap the
        server sees at least `interval`, however long the previous request
        took to leave.
        """
        self._next_free[host] = max(
            self._next_free.get(host, 0.0), now + self.interval)

    async def acquire(self, host):
        loop = asyncio.get_running_loop()
        wait = self.reserve(host, loop.time())
        if wait > 0:
            await asyncio.sleep(wait)


def host_of(url):
    """The pacing key of a URL: its lower-case host, or None."""
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ('http', 'https', 'ftp') or not parsed.raw_host:
        return None
    return parsed.raw_host.lower()


class Checker:
    """Checks URLs; holds the HTTP session, the pacing and the guard.

    `resolver` is the name resolver behind the guard (an aiohttp
    AbstractResolver; default: getaddrinfo in a thread). Tests pass a
    `guard.StaticResolver`. `mx_lookup` replaces the mailto DNS check.
    `clock` gives epoch seconds.
    """

    def __init__(self, settings=None, resolver=None, mx_lookup=None,
                 clock=time.time):
        self.settings = settings if settings is not None else CheckerSettings()
        self.address_policy = guard.AddressPolicy(self.settings.allow_cidrs)
        self.resolver = guard.GuardedResolver(self.address_policy, resolver)
        self.mx_lookup = mx_lookup
        self.clock = clock
        rate = self.settings.per_host_rate
        self.pacer = Pacer(1.0 / rate) if rate else None
        self.session = None
        self._executor = None

    async def open(self):
        if self.session is not None:
            return
        s = self.settings
        connector = aiohttp.TCPConnector(
            limit=s.concurrency, limit_per_host=0, resolver=self.resolver,
            use_dns_cache=True, ttl_dns_cache=s.dns_cache_ttl,
            keepalive_timeout=s.keepalive_timeout)
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers={'User-Agent': s.user_agent},
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(s.concurrency, 16),
            thread_name_prefix='lms-ftp')

    async def close(self):
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def _pace(self, prepaid_host):
        if self.pacer is None:
            return NO_PACING
        return _CheckPacing(self.pacer, prepaid_host)

    async def outcome(self, url, prepaid_host=None):
        """What checking `url` yields on the wire (`policy.Outcome`)."""
        await self.open()
        s = self.settings
        if not isinstance(url, str):
            return policy.Outcome(policy.KIND_INVALID, 'URL is not a string')
        scheme = url.split(':', 1)[0].lower() if ':' in url else ''
        pace = self._pace(prepaid_host)
        if scheme in ('http', 'https'):
            return await check_http(
                self.session, url, s, self.address_policy, pace)
        if scheme == 'ftp':
            return await check_ftp(
                url, s, self.resolver, asyncio.get_running_loop(),
                self._executor, pace)
        if scheme == 'mailto':
            inner = self.resolver.inner or aiohttp.resolver.ThreadedResolver()
            return await check_mailto(url, s, inner, self.mx_lookup)
        if not scheme:
            return policy.Outcome(policy.KIND_INVALID, 'URL has no scheme')
        return policy.Outcome(policy.KIND_UNSUPPORTED,
                              f'unsupported protocol: {scheme[:20]}')

    async def check(self, url, history=None, key=None, prepaid_host=None):
        """Check one URL and apply the policy; return a `Result`."""
        try:
            outcome = await self.outcome(url, prepaid_host)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # One odd URL must not end the batch; the operator sees why.
            log.exception('checking %r failed', url)
            outcome = policy.Outcome(
                policy.KIND_TRANSIENT,
                f'internal error: {type(e).__name__}: {e}'[:300])
        now = self.clock()
        decision = policy.decide(outcome, history, now, self.settings)
        return Result(key, decision.state, decision.reason,
                      decision.next_check, decision.history,
                      datetime.datetime.fromtimestamp(
                          now, datetime.timezone.utc))

    async def check_many(self, items):
        """Check ``(key, url, history)`` items; yield `Result`s as they
        finish.

        Without pacing the items are consumed lazily; with pacing they are
        read at once to be sorted by host.
        """
        await self.open()
        if self.pacer is None:
            source = _Unpaced(items)
        else:
            source = _Paced(items, self.pacer)
        results = asyncio.Queue()
        done = object()

        async def worker():
            try:
                while True:
                    got = await source.next()
                    if got is None:
                        return
                    (key, url, history), host = got
                    results.put_nowait(
                        await self.check(url, history, key, host))
            finally:
                results.put_nowait(done)

        n = self.settings.concurrency
        workers = [asyncio.ensure_future(worker()) for _ in range(n)]
        try:
            finished = 0
            while finished < n:
                result = await results.get()
                if result is done:
                    finished += 1
                    continue
                yield result
            for w in workers:
                # re-raise a worker's unexpected failure
                w.result()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)


class _CheckPacing:
    """Pacing for one check whose first slot the dispatcher already took."""

    def __init__(self, pacer, prepaid_host):
        self.pacer = pacer
        self.prepaid_host = prepaid_host

    async def wait(self, host):
        if host == self.prepaid_host:
            self.prepaid_host = None
            return
        await self.pacer.acquire(host)

    def done(self, host):
        self.pacer.done(host, asyncio.get_running_loop().time())


class _Unpaced:

    def __init__(self, items):
        self._items = iter(items)

    async def next(self):
        for item in self._items:
            return item, None
        return None


class _Paced:
    """Hands out items host by host, each when its host has a free slot."""

    def __init__(self, items, pacer):
        self.pacer = pacer
        self.free = collections.deque()
        self.queues = {}
        for item in items:
            host = host_of(item[1])
            if host is None:
                self.free.append(item)
            else:
                self.queues.setdefault(host, collections.deque()).append(item)
        self.heap = [(0.0, n, host) for n, host in enumerate(self.queues)]
        self.lock = asyncio.Lock()

    async def next(self):
        if self.free:
            return self.free.popleft(), None
        async with self.lock:
            loop = asyncio.get_running_loop()
            while self.heap:
                ready, seq, host = self.heap[0]
                now = loop.time()
                at = max(ready, now + self.pacer.delay(host, now))
                if at > now + 1e-4:
                    if at > ready + 1e-6:
                        # a redirect or GET retry of another check took the
                        # slot; the host goes back in line
                        heapq.heapreplace(self.heap, (at, seq, host))
                    else:
                        await asyncio.sleep(at - now)
                    continue
                self.pacer.reserve(host, now)
                queue = self.queues[host]
                item = queue.popleft()
                if queue:
                    heapq.heapreplace(
                        self.heap, (now + self.pacer.interval, seq, host))
                else:
                    heapq.heappop(self.heap)
                    del self.queues[host]
                return item, host
            return None


async def check_many(items, settings=None, resolver=None, mx_lookup=None):
    """Check ``(key, url, history)`` items with a fresh `Checker`; yield
    `Result`s as they finish."""
    async with Checker(settings, resolver, mx_lookup) as checker:
        async for result in checker.check_many(items):
            yield result


def run(items, settings=None, resolver=None, mx_lookup=None):
    """Blocking convenience: check `items`, return the list of `Result`s."""
    async def collect():
        return [r async for r in check_many(
            items, settings, resolver, mx_lookup)]
    return asyncio.run(collect())
