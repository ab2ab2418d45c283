"""Name resolution for the checker: a time limit, a cache, one lookup a name.

`NameCache` sits between the address guard (guard.GuardedResolver) and
the resolver that asks DNS. It

* gives every lookup `timeout` seconds; a name that takes longer fails
  like a DNS server that does not answer (EAI_AGAIN, a transient failure);
* remembers answers for `ttl` seconds and failures (no such name, no
  answer in time) for `negative_ttl` seconds, so the hundred URLs of a
  slow or dead name wait for one lookup, not a hundred;
* runs one lookup per name at a time: whoever asks while it runs waits
  for the same answer;
* keeps at most `size` names, dropping the least recently used.

The guard sits above the cache: every answer, fresh or remembered, passes
the address policy again each time it is used.

`ThreadedLookup` is the resolver that asks DNS: the C library's
getaddrinfo in threads of its own, so that many names are resolved at the
same time instead of queueing for the event loop's few default threads.
"""

import asyncio
import collections
import concurrent.futures
import socket
import time

import aiohttp.abc


_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


def _infos(host, port, addresses):
    return [{'hostname': host, 'host': address, 'port': port,
             'family': family, 'proto': proto, 'flags': _NUMERIC}
            for address, family, proto in addresses]


class ThreadedLookup(aiohttp.abc.AbstractResolver):
    """getaddrinfo in up to `threads` threads of its own."""

    def __init__(self, threads=16):
        self.threads = threads
        self._pool = None

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.threads, thread_name_prefix='lms-dns')
        infos = await asyncio.get_running_loop().run_in_executor(
            self._pool, socket.getaddrinfo, host, port, family,
            socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)
        # The scope of a link-local IPv6 address is dropped: the guard
        # refuses those anyway.
        return _infos(host, port, [(address[0], fam, proto)
                                   for fam, _, proto, _, address in infos])

    async def close(self):
        if self._pool is not None:
            # A lookup still running in a thread ends on its own.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class NameCache(aiohttp.abc.AbstractResolver):
    """Resolves through `inner` with a time limit and a cache.

    `clock` gives monotonic seconds (tests pass their own).
    """

    def __init__(self, inner, timeout=10.0, ttl=300.0, negative_ttl=60.0,
                 size=10000, clock=time.monotonic):
        self.inner = inner
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.size = size
        self.clock = clock
        # (name, family) -> (expiry, addresses or (exception type, args))
        self._entries = collections.OrderedDict()
        self._running = {}
        self.lookups = 0

    def _key(self, host, family):
        return host.lower(), family

    async def resolve(self, host, port=0, family=socket.AF_INET):
        key = self._key(host, family)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > self.clock():
                self._entries.move_to_end(key)
                return self._answer(host, port, entry[1])
            del self._entries[key]
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(self._lookup(key, host, family))
            self._running[key] = running
        # One waiter giving up (its check was cancelled) must not cancel
        # the lookup the others wait for.
        return self._answer(host, port, await asyncio.shield(running))

    def knows(self, host, family=socket.AF_UNSPEC):
        """Whether an answer or a failure for `host` is remembered."""
        entry = self._entries.get(self._key(host, family))
        return entry is not None and entry[0] > self.clock()

    def peek(self, host, family=socket.AF_UNSPEC):
        """What is remembered about `host`, without looking it up: its
        addresses (strings; an empty list for a remembered failure), or
        None if nothing is."""
        entry = self._entries.get(self._key(host, family))
        if entry is None or entry[0] <= self.clock():
            return None
        answer = entry[1]
        return ([address for address, _, _ in answer]
                if isinstance(answer, list) else [])

    async def _lookup(self, key, host, family):
        try:
            self.lookups += 1
            try:
                infos = await asyncio.wait_for(
                    self.inner.resolve(host, 0, family), self.timeout)
            except asyncio.TimeoutError:
                # (TimeoutError is an OSError: this clause comes first.)
                answer = (socket.gaierror, (
                    socket.EAI_AGAIN, f'no answer within {self.timeout:g} s'))
            except OSError as e:
                answer = (type(e), e.args)
            else:
                answer = [(i['host'], i['family'], i['proto'])
                          for i in infos]
                if not answer:
                    answer = (socket.gaierror, (
                        getattr(socket, 'EAI_NODATA', socket.EAI_NONAME),
                        'No address associated with hostname'))
            positive = isinstance(answer, list)
            self._entries[key] = (
                self.clock() + (self.ttl if positive else self.negative_ttl),
                answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return answer
        finally:
            del self._running[key]

    @staticmethod
    def _answer(host, port, answer):
        if isinstance(answer, list):
            return _infos(host, port, answer)
        # A new exception each time: raising one instance again and again
        # would grow its traceback.
        kind, args = answer
        raise kind(*args)

    async def close(self):
        for task in list(self._running.values()):
            task.cancel()
        await self.inner.close()


__all__ = ['NameCache', 'ThreadedLookup']
