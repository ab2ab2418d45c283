"""The checking engine: many URLs at once, politely.

Typical use::

    async with Checker(settings) as checker:
        async for result in checker.check_many(items):
            ...  # collect, write to the database in batches

`items` is an iterable of ``(key, url, history)``; each `policy.Result`
carries the key back together with the new state, reason, seconds until
the next check, the history to store and when the check finished.
Results come in the order the checks finish. A `Checker` may be kept open across runs: it keeps the
keep-alive connections, the name cache and the per-host pacing between
them.

The checker process passes no batch but `more`, which claims further due
URLs whenever the work at hand runs low (see `Checker.check_many`), so
that no URL waits for the slowest of a batch.

Names: a URL waits for its host name to be resolved before it takes one of
the `concurrency` work slots. The names of new hosts are resolved side by
side (`resolve.NameCache`: a time limit, answers and failures remembered),
so a name that takes seconds to resolve holds up its own URLs only.

Pacing: with `per_host_rate` set, requests to one host (redirect hops and
GET-after-HEAD included) start at least 1/rate seconds apart. A host is its
name and every address the name resolves to: names that resolve to the
same address (virtual hosts, a CDN's edge) share that address's rate. URLs
are handed to the workers host by host in the order their host becomes
free, so a worker never sits on a URL whose host is busy while other hosts
could be served. A check's later requests to a host (a GET that confirms a
failed HEAD, a redirect hop) wait for that host's next slot; the worker
waiting for it steps aside meanwhile and another takes its place
(`_Workers`), so `concurrency` counts the checks at work, not the ones
asleep until their host is free again.
"""

import asyncio
import collections
import concurrent.futures
import datetime
import heapq
import itertools
import logging
import socket
import time

import aiohttp

from gocept.lms.checking import guard
from gocept.lms.checking import policy
from gocept.lms.checking import resolve
from gocept.lms.checking.ftp import check_ftp
from gocept.lms.checking import anchors
from gocept.lms.checking.hosts import host_of
from gocept.lms.checking.http import check_http, NO_PACING
from gocept.lms.checking.mailto import check_mailto
from gocept.lms.checking.settings import CheckerSettings


log = logging.getLogger(__name__)

class Pacer:
    """Hands out request slots, `interval` seconds apart per key.

    A request is paced by several keys at once (its host's name and each
    of the name's addresses): it starts when every one of them is free,
    and takes a slot of each.
    """

    def __init__(self, interval):
        self.interval = interval
        self._next_free = {}

    def delay(self, keys, now):
        free = self._next_free
        return max(0.0, max(free.get(k, 0.0) for k in keys) - now)

    def reserve(self, keys, now):
        """Take the next common slot of `keys`; return how long to wait
        for it."""
        free = self._next_free
        start = max(now, max(free.get(k, 0.0) for k in keys))
        for k in keys:
            free[k] = start + self.interval
        if len(free) > 50000:
            # Keys whose slot has passed need no memory.
            self._next_free = {k: t for k, t in free.items() if t > now}
        return start - now

    def done(self, keys, now):
        """A request paced by `keys` ended: the next starts an interval
        later.

        Spacing from the end, not only from the start, keeps the gap the
        server sees at least `interval`, however long the previous request
        took to leave.
        """
        free = self._next_free
        for k in keys:
            free[k] = max(free.get(k, 0.0), now + self.interval)


class HeadDoubts:
    """Hosts whose HEAD answers failed lately, to be asked with GET first.

    Under a per-host rate a host's request slots are what a round waits
    for, and a failed HEAD costs two of them (the GET that confirms it is
    paced too). Where HEAD failed once, more failures are likely (a site
    that moved its pages, a server that breaks HEAD), so for `seconds`
    after a failed HEAD that host's URLs are asked with GET at once: one
    slot per link, whatever its answer, for a body read up to the cap.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self._until = {}

    def doubted(self, host, now):
        return self._until.get(host, 0.0) > now

    def add(self, host, now):
        until = self._until
        until[host] = now + self.seconds
        if len(until) > 50000:
            self._until = {h: t for h, t in until.items() if t > now}


def pacing_keys(host, addresses):
    """The keys a request to `host` at `addresses` is paced by."""
    return (host,) + tuple(a for a in dict.fromkeys(addresses) if a != host)


class Checker:
    """Checks URLs; holds the HTTP session, the pacing and the guard.

    `resolver` is the name resolver behind the name cache and the guard
    (an aiohttp AbstractResolver; default: getaddrinfo in threads of its
    own). Tests and benchmarks pass a `guard.StaticResolver`. `mx_lookup`
    replaces the mailto DNS check. `clock` gives epoch seconds,
    `dns_clock` monotonic seconds for the name cache.
    """

    def __init__(self, settings=None, resolver=None, mx_lookup=None,
                 clock=time.time, dns_clock=time.monotonic):
        self.settings = s = (
            settings if settings is not None else CheckerSettings())
        self.address_policy = guard.AddressPolicy(s.allow_cidrs)
        self.names = resolve.NameCache(
            resolver if resolver is not None
            else resolve.ThreadedLookup(max(16, s.concurrency)),
            timeout=s.dns_timeout, ttl=s.dns_cache_ttl,
            negative_ttl=s.dns_failure_ttl, size=s.dns_cache_size,
            clock=dns_clock)
        # The guard above the cache: remembered answers are checked again
        # each time they are used.
        self.resolver = guard.GuardedResolver(self.address_policy, self.names)
        self.mx_lookup = mx_lookup
        self.clock = clock
        rate = self.settings.per_host_rate
        self.pacer = Pacer(1.0 / rate) if rate else None
        self.head_doubts = (
            HeadDoubts(self.settings.get_first_for)
            if rate and self.settings.get_first_for else None)
        self.session = None
        self._executor = None
        self.pages = (anchors.PageCache() if self.settings.check_fragments
                      else None)

    async def open(self):
        if self.session is not None:
            return
        s = self.settings
        # aiohttp's own DNS cache is off: `names` caches (and times out)
        # for the connector, the dispatcher and FTP alike.
        connector = aiohttp.TCPConnector(
            limit=s.concurrency, limit_per_host=0, resolver=self.resolver,
            use_dns_cache=False, keepalive_timeout=s.keepalive_timeout)
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
        await self.names.close()

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def known_keys(self, host):
        """The pacing keys of `host` if they are known without a lookup
        (an address literal, or a name in the cache), else None."""
        try:
            literal = self.address_policy.check_host(host)
        except guard.Forbidden:
            return (host,)     # nothing is sent there
        if literal is not None:
            return pacing_keys(host, (str(literal),))
        addresses = self.names.peek(host, socket.AF_UNSPEC)
        if addresses is None:
            return None
        return pacing_keys(host, addresses)

    async def pacing_keys(self, host):
        """The pacing keys of `host`: its name and its addresses."""
        keys = self.known_keys(host)
        if keys is None:
            try:
                await self.resolver.resolve(host, 0, socket.AF_UNSPEC)
            except OSError:
                pass    # the request fails the same way, and says why
            keys = self.known_keys(host) or (host,)
        return keys

    def _pace(self, ticket):
        if self.pacer is None:
            return NO_PACING
        return _CheckPacing(self, ticket)

    async def outcome(self, url, ticket=None):
        """What checking `url` yields on the wire (`policy.Outcome`).

        `ticket` (a `Ticket`) comes from the dispatcher of `check_many`:
        the first request's pacing slot it took already, and how to wait
        for a later slot.
        """
        await self.open()
        s = self.settings
        if not isinstance(url, str):
            return policy.Outcome(policy.KIND_INVALID, 'URL is not a string')
        scheme = url.split(':', 1)[0].lower() if ':' in url else ''
        pace = self._pace(ticket)
        if scheme in ('http', 'https'):
            return await check_http(
                self.session, url, s, self.address_policy, pace,
                self.pages)
        if scheme == 'ftp':
            return await check_ftp(
                url, s, self.resolver, asyncio.get_running_loop(),
                self._executor, pace)
        if scheme == 'mailto':
            return await check_mailto(url, s, self.names, self.mx_lookup)
        if not scheme:
            return policy.Outcome(policy.KIND_INVALID, 'URL has no scheme')
        return policy.Outcome(policy.KIND_UNSUPPORTED,
                              f'unsupported protocol: {scheme[:20]}')

    async def check(self, url, history=None, key=None, ticket=None):
        """Check one URL and apply the policy; return a `Result`."""
        try:
            outcome = await self.outcome(url, ticket)
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
        return policy.Result(key, decision.state, decision.reason,
                      decision.next_check, decision.history,
                      datetime.datetime.fromtimestamp(
                          now, datetime.timezone.utc))

    async def check_many(self, items, more=None, hold=2000, poll=5.0):
        """Check ``(key, url, history)`` items; yield `Result`s as they
        finish.

        `more`, if given, brings further items: ``await more(room)``
        returns a list of at most `room` of them (empty if there are none
        now). It is asked whenever the work at hand runs low (fewer than
        half of `hold` items ready to start, or with pacing fewer hosts
        with work than `concurrency`), and at least every `poll` seconds
        while there is room, so an item that turns up meanwhile waits no
        longer than that. At most `hold` items wait for a work slot;
        items whose host name has been resolving for more than
        `SLOW_LOOKUP` seconds do not count, as they hold up nothing else
        (up to `PARKED_HOLDS` times `hold` items wait in all). The run
        ends when every item is checked and `more` had none.
        """
        await self.open()
        feed = _Dispatcher(self, more, hold, poll)
        results = asyncio.Queue()
        done = object()

        async def worker():
            try:
                while not workers.surplus():
                    got = await feed.next()
                    if got is None:
                        return
                    (key, url, history), slot = got
                    try:
                        result = await self.check(
                            url, history, key, Ticket(slot, workers.park))
                    finally:
                        feed.finished()
                    results.put_nowait(result)
            finally:
                results.put_nowait(done)

        workers = _Workers(self.settings.concurrency, worker)
        try:
            feed.add(items)
            workers.fill()
            finished = 0
            while finished < len(workers.started):
                result = await results.get()
                if result is done:
                    finished += 1
                    continue
                yield result
            for w in workers.started:
                # re-raise a worker's unexpected failure
                w.result()
        finally:
            for w in workers.started:
                w.cancel()
            await asyncio.gather(*workers.started, return_exceptions=True)
            await feed.close()


class Ticket(collections.namedtuple('Ticket', 'slot park')):
    """What a worker of `check_many` gets with its item.

    slot
        ``(host, keys)`` of the first request, whose pacing slot the
        dispatcher took already, or None
    park
        ``await park(seconds)`` waits for a later request's slot without
        holding a work slot meanwhile (`_Workers.park`)
    """

    __slots__ = ()


class _Workers:
    """The workers of one `check_many`: `size` of them at work.

    A worker that waits for its host's next slot in the middle of a check
    (`park`) does not count: another one starts, so that other hosts are
    served meanwhile. When it wakes, the first worker to finish an item
    while more than `size` are at work stops (`surplus`). Without this, a
    round in which many hosts need a second request at about the same
    time (every tenth URL broken, each failed HEAD confirmed by GET) has
    all workers asleep for a second while other hosts' slots pass unused.
    """

    def __init__(self, size, run):
        self.size = size
        self.run = run
        self.started = []
        self.running = 0    # started and not finished
        self.parked = 0

    def fill(self):
        while self.running - self.parked < self.size:
            self.running += 1
            self.started.append(asyncio.ensure_future(self._run()))

    async def _run(self):
        try:
            await self.run()
        finally:
            # At once, not in a done callback: a worker that sees a
            # surplus and stops must be gone before the next one looks,
            # or both stop and leave work behind.
            self.running -= 1

    def surplus(self):
        return self.running - self.parked > self.size

    async def park(self, seconds):
        self.parked += 1
        try:
            self.fill()
            await asyncio.sleep(seconds)
        finally:
            self.parked -= 1


class _CheckPacing:
    """Pacing for one check. The dispatcher may have taken the slot of
    its first request already (the `Ticket`'s slot)."""

    def __init__(self, checker, ticket):
        self.checker = checker
        self.keys = {}
        self.prepaid = None
        self.sleep = asyncio.sleep
        if ticket is not None:
            self.sleep = ticket.park
            if ticket.slot is not None:
                self.prepaid, self.keys[ticket.slot[0]] = ticket.slot

    async def wait(self, host):
        if host == self.prepaid:
            self.prepaid = None
            return
        keys = self.keys.get(host)
        if keys is None:
            # a redirect to another host: its addresses count as well
            keys = self.keys[host] = await self.checker.pacing_keys(host)
        pacer = self.checker.pacer
        wait = pacer.reserve(keys, asyncio.get_running_loop().time())
        if wait > 0:
            await self.sleep(wait)

    def done(self, host):
        self.checker.pacer.done(self.keys.get(host, (host,)),
                                asyncio.get_running_loop().time())

    def first_method(self, host):
        doubts = self.checker.head_doubts
        if doubts is not None and doubts.doubted(
                host, asyncio.get_running_loop().time()):
            return 'GET'
        return 'HEAD'

    def head_failed(self, host):
        doubts = self.checker.head_doubts
        if doubts is not None:
            doubts.add(host, asyncio.get_running_loop().time())


# How many times `hold` items may wait in all, most of them for their
# host's name.
PARKED_HOLDS = 5

# Seconds after which a name lookup counts as slow: its URLs no longer
# count against `hold`. Not at once: the first URLs of every host wait
# for their lookup, most lookups take milliseconds, and the checker must
# not claim more and more while they do.
SLOW_LOOKUP = 0.25


class _Dispatcher:
    """Hands out items to the workers of one `check_many`.

    Each host has a queue, and hosts take turns. An item whose host name
    is not in the name cache waits aside while the name is resolved, and
    then joins its host's queue. Without pacing, hosts take turns in
    rotation (`turns`): the checks in flight spread over the hosts, which
    keeps one keep-alive connection per host busy instead of opening many
    to one host. With pacing, hosts take turns in the order their next
    slot comes (`heap`); a host's slot is free when the slots of its name
    and of all its addresses are.
    """

    def __init__(self, checker, more, hold, poll):
        self.checker = checker
        self.pacer = checker.pacer
        self.more = more
        self.hold = hold
        self.poll = poll
        self.low = (hold // 2 if self.pacer is None
                    else checker.settings.concurrency)
        self.loop = asyncio.get_running_loop()
        self.free = collections.deque()  # items without a host
        self.queues = {}                 # host -> its items
        self.queued = 0                  # items in all queues
        self.turns = collections.deque()  # unpaced: hosts with items
        self.keys = {}                   # paced: host -> its pacing keys
        self.heap = []                   # paced: (next slot, seq, host)
        self.seq = itertools.count()
        self.parked = {}                 # host -> items awaiting its name
        self.slow = {}                   # host -> its lookup's slow timer
        self.slow_items = 0              # items awaiting a slow lookup
        self.held = 0                    # items not handed out yet
        self.busy = 0                    # items handed out, not finished
        self.tasks = set()               # name lookups, the call of `more`
        self.asking = False
        self.dry = more is None          # `more` had nothing last time
        self.asked = -poll               # when `more` was last asked
        self.error = None
        self.next_slot = None            # paced: when the first host is free
        self.lock = asyncio.Lock()
        self.wakeup = None               # what the waiting worker awaits

    def add(self, items):
        paced = self.pacer is not None
        known = self.checker.names.knows
        check_host = self.checker.address_policy.check_host
        for item in items:
            self.held += 1
            host = host_of(item[1])
            if host is None:
                self.free.append(item)
                continue
            queue = self.queues.get(host)
            if queue is not None:
                queue.append(item)
                self.queued += 1
                continue
            parked = self.parked.get(host)
            if parked is not None:
                parked.append(item)
                if self.slow.get(host) is None:
                    self.slow_items += 1
                continue
            if paced:
                keys = self.checker.known_keys(host)
                if keys is not None:
                    self._enqueue(host, keys, (item,))
                    continue
            else:
                try:
                    literal = check_host(host)
                except guard.Forbidden:
                    literal = True  # refused without a lookup
                if literal is not None or known(host):
                    self._enqueue(host, None, (item,))
                    continue
            self.parked[host] = [item]
            self.slow[host] = self.loop.call_later(
                SLOW_LOOKUP, self._slow_lookup, host)
            self._start(self._resolve(host))

    def _enqueue(self, host, keys, items):
        queue = self.queues.get(host)
        if queue is None:
            self.queues[host] = collections.deque(items)
            if self.pacer is None:
                self.turns.append(host)
            else:
                self.keys[host] = keys
                heapq.heappush(self.heap, (0.0, next(self.seq), host))
        else:
            queue.extend(items)
        self.queued += len(items)

    async def _resolve(self, host):
        try:
            await self.checker.resolver.resolve(host, 0, socket.AF_UNSPEC)
        except OSError:
            pass    # remembered: the check meets it at once and says why
        except Exception:
            log.exception('resolving %r failed', host)
        finally:
            items = self.parked.pop(host)
            timer = self.slow.pop(host)
            if timer is None:
                self.slow_items -= len(items)
            else:
                timer.cancel()
            keys = None
            if self.pacer is not None:
                keys = self.checker.known_keys(host) or (host,)
            self._enqueue(host, keys, items)
            self._wake()

    def _slow_lookup(self, host):
        self.slow[host] = None
        self.slow_items += len(self.parked[host])
        self._wake()    # there may be room for more now

    def _start(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task):
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.error = self.error or task.exception()
            self._wake()

    def _room(self):
        # Items waiting for a slow name hold no work slot: they do not
        # keep other hosts' items out. But a DNS that fails slowly for
        # every name must not draw the whole schedule into memory.
        return min(self.hold - (self.held - self.slow_items),
                   PARKED_HOLDS * self.hold - self.held)

    def _ask_more(self):
        """Ask `more` for items if the work at hand runs low or it has
        not been asked for `poll` seconds."""
        if self.more is None or self.asking:
            return
        room = self._room()
        if room <= 0:
            return
        now = self.loop.time()
        if now - self.asked < self.poll:
            if self.dry:
                return
            ready = len(self.free) + (
                self.queued if self.pacer is None else len(self.heap))
            if ready >= self.low:
                return
        self.asking = True
        self.asked = now
        self._start(self._more(room))

    async def _more(self, room):
        try:
            items = await self.more(room)
        finally:
            self.asking = False
            self.asked = self.loop.time()
        self.dry = not items
        self.add(items)
        self._wake()

    def _take(self):
        """An item that may start now, with its prepaid slot, or None."""
        if self.free:
            return self.free.popleft(), None
        if self.pacer is None:
            turns = self.turns
            if not turns:
                return None
            host = turns.popleft()
            queue = self.queues[host]
            item = queue.popleft()
            self.queued -= 1
            if queue:
                turns.append(host)
            else:
                del self.queues[host]
            return item, None
        heap = self.heap
        self.next_slot = None
        if not heap:
            return None
        pacer = self.pacer
        now = self.loop.time()
        while heap:
            ready, seq, host = heap[0]
            keys = self.keys[host]
            at = max(ready, now + pacer.delay(keys, now))
            if at > now + 1e-4:
                if at > ready + 1e-6:
                    # another host with a common address, or a redirect
                    # or GET retry of another check, took the slot: the
                    # host goes back in line
                    heapq.heapreplace(heap, (at, seq, host))
                    continue
                self.next_slot = at
                return None
            pacer.reserve(keys, now)
            queue = self.queues[host]
            item = queue.popleft()
            self.queued -= 1
            if queue:
                heapq.heapreplace(heap, (now + pacer.interval, seq, host))
            else:
                heapq.heappop(heap)
                del self.queues[host]
                del self.keys[host]
            return item, (host, keys)
        return None

    async def next(self):
        """The next item and its prepaid slot; None when all is done."""
        got = self._take()
        if got is None:
            # One worker waits for the next item, the others for it.
            async with self.lock:
                while True:
                    got = self._take()
                    if got is not None:
                        break
                    if self.error is not None:
                        raise self.error
                    self._ask_more()
                    if not (self.held or self.busy or self.asking
                            or not self.dry):
                        return None
                    await self._sleep()
        self.held -= 1
        self.busy += 1
        self._ask_more()
        return got

    def finished(self):
        self.busy -= 1
        if not self.busy:
            self._wake()

    async def _sleep(self):
        """Until something changes, the next slot comes or `more` is due
        to be asked again."""
        at = self.next_slot
        if self.more is not None and not self.asking and self._room() > 0:
            due = self.asked + self.poll
            at = due if at is None else min(at, due)
        self.wakeup = self.loop.create_future()
        timer = None
        if at is not None:
            timer = self.loop.call_at(at, self._wake)
        try:
            await self.wakeup
        finally:
            self.wakeup = None
            if timer is not None:
                timer.cancel()

    def _wake(self):
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    async def close(self):
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for timer in self.slow.values():
            if timer is not None:
                timer.cancel()


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
