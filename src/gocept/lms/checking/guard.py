"""The address guard: which hosts the checker may connect to.

The posture is "deny every address that is not plainly public, allow what
the operator lists by CIDR". The decision is always made on an *address*,
never on a name: names are resolved once (by `GuardedResolver`) and the
connection goes to the address that passed, so a name cannot resolve to
something else between the check and the connect (DNS rebinding).

Address literals in URLs are parsed the way the C library would parse them
(`inet_aton` accepts ``127.1``, ``2130706433``, ``0177.0.0.1`` and
``0x7f000001``), because that is what a socket would end up talking to.
"""

import asyncio
import ipaddress
import socket

import aiohttp.abc
import aiohttp.resolver

from gocept.lms.checking.settings import parse_cidrs


# Ranges refused even though some of them are not flagged by `ipaddress`
# (multicast, for example, counts as "global" there). The label goes into
# the reason shown to operators.
_FORBIDDEN = [
    (ipaddress.ip_network(cidr), label) for cidr, label in [
        ('0.0.0.0/8', 'this-network'),
        ('10.0.0.0/8', 'private'),
        ('100.64.0.0/10', 'carrier-grade NAT'),
        ('127.0.0.0/8', 'loopback'),
        ('169.254.0.0/16', 'link-local'),
        ('172.16.0.0/12', 'private'),
        ('192.0.0.0/24', 'IETF protocol assignments'),
        ('192.0.2.0/24', 'documentation'),
        ('192.88.99.0/24', '6to4 relay anycast'),
        ('192.168.0.0/16', 'private'),
        ('198.18.0.0/15', 'benchmarking'),
        ('198.51.100.0/24', 'documentation'),
        ('203.0.113.0/24', 'documentation'),
        ('224.0.0.0/4', 'multicast'),
        ('240.0.0.0/4', 'reserved'),
        ('::/128', 'unspecified'),
        ('::1/128', 'loopback'),
        ('::ffff:0:0/96', 'IPv4-mapped'),
        ('::/96', 'IPv4-compatible'),
        ('64:ff9b:1::/48', 'local NAT64'),
        ('100::/64', 'discard-only'),
        ('2001::/23', 'IETF protocol assignments'),
        ('2001:db8::/32', 'documentation'),
        ('fc00::/7', 'unique local'),
        ('fe80::/10', 'link-local'),
        ('fec0::/10', 'site-local'),
        ('ff00::/8', 'multicast'),
    ]]

# Prefixes that embed an IPv4 address a gateway would forward to.
_NAT64 = ipaddress.ip_network('64:ff9b::/96')
_6TO4 = ipaddress.ip_network('2002::/16')


class Forbidden(OSError):
    """Raised when a host or address is refused by the policy.

    An OSError so that aiohttp reports it from the resolver like any other
    resolution failure; the checker recognises it by type.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


def parse_address(host):
    """Return the IP address a host string denotes, or None for a name.

    Accepts every spelling a socket would accept, brackets and zone ids
    included.
    """
    host = host.strip()
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ':' in host:
        # IPv6 with a zone id (fe80::1%eth0) or garbage
        try:
            return ipaddress.ip_address(host.split('%', 1)[0])
        except ValueError:
            return None
    # inet_aton is the parser getaddrinfo uses for numeric hosts, so a host
    # it accepts is an address whatever it looks like.
    if host and all(c in '0123456789abcdefxABCDEFX.' for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _forbidden_label(address):
    for network, label in _FORBIDDEN:
        if address.version == network.version and address in network:
            return label
    if address.version == 6:
        if address in _NAT64 or address in _6TO4:
            embedded = (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                        if address in _NAT64 else address.sixtofour)
            label = _forbidden_label(embedded)
            if label:
                return f'{label} via {"NAT64" if address in _NAT64 else "6to4"}'
    if not address.is_global:
        return 'not global'
    return None


class AddressPolicy:
    """Decides on single addresses.

    `allow` is an iterable of networks (or CIDR strings) that are permitted
    even though they would be refused otherwise; tests and intranet setups
    use it.
    """

    def __init__(self, allow=()):
        self.allow = parse_cidrs(allow) if isinstance(allow, str) else tuple(
            ipaddress.ip_network(a, strict=False) if isinstance(a, str) else a
            for a in allow)
        # host string -> address, None (a name) or the refusal message;
        # parsing addresses is a noticeable part of a check's CPU time
        self._hosts = {}

    def refusal(self, address):
        """Why `address` is refused ("10.0.0.1 (private)"), or None."""
        if isinstance(address, str):
            address = parse_address(address)
            if address is None:
                return 'not an IP address'
        for network in self.allow:
            if address.version == network.version and address in network:
                return None
        label = _forbidden_label(address)
        if label:
            return f'{address} ({label})'
        return None

    def check_host(self, host):
        """Check a host taken from a URL without resolving it.

        Address literals in any spelling are decided here (aiohttp connects
        to literals without asking the resolver). Returns the canonical
        address for literals, None for names (those are decided by the
        resolver). Raises `Forbidden`.
        """
        try:
            decision = self._hosts[host]
        except KeyError:
            decision = self._decide_host(host)
            if len(self._hosts) > 20000:
                self._hosts.clear()
            self._hosts[host] = decision
        if isinstance(decision, str):
            raise Forbidden(decision)
        return decision

    def _decide_host(self, host):
        address = parse_address(host)
        if address is None:
            return None
        why = self.refusal(address)
        if why:
            if host.strip('[]') != str(address):
                why = f'{host} means {why}'
            return f'forbidden by policy: {why}'
        return address

    def check_resolved(self, host, addresses):
        """Refuse a name if *any* of its addresses is refused.

        Accepting a name that resolves to both a public and a private
        address would let a round-robin trick reach the private one.
        """
        for address in addresses:
            why = self.refusal(address)
            if why:
                raise Forbidden(f'forbidden by policy: {host} resolves to {why}')


class StaticResolver(aiohttp.abc.AbstractResolver):
    """A resolver answering from a fixed mapping (tests, benchmarks).

    Names it does not know fail like a non-existent DNS name. A value may
    also be an exception instance to raise. `delays` maps names to the
    seconds their answer takes (slow DNS servers).
    """

    def __init__(self, mapping, delays=None):
        self.mapping = {k.lower(): v for k, v in mapping.items()}
        self.delays = {k.lower(): v for k, v in (delays or {}).items()}
        self.queries = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.queries.append(host)
        name = host.lower().rstrip('.')
        delay = self.delays.get(name)
        if delay:
            await asyncio.sleep(delay)
        value = self.mapping.get(name)
        if value is None:
            raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
        if isinstance(value, BaseException):
            raise value
        if isinstance(value, str):
            value = [value]
        result = []
        for addr in value:
            ip = ipaddress.ip_address(addr)
            result.append({
                'hostname': host, 'host': str(ip), 'port': port,
                'family': socket.AF_INET6 if ip.version == 6
                else socket.AF_INET,
                'proto': 0, 'flags': socket.AI_NUMERICHOST})
        return result

    async def close(self):
        pass


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves through `inner` and lets only permitted addresses through.

    aiohttp connects to exactly the addresses this returns, so the address
    that was checked is the address that is connected to.
    """

    def __init__(self, policy, inner=None):
        self.policy = policy
        self.inner = inner

    async def resolve(self, host, port=0, family=socket.AF_INET):
        if self.inner is None:
            self.inner = aiohttp.resolver.ThreadedResolver()
        # A name that is really an address literal in an odd spelling gets
        # decided on the address (and never reaches DNS).
        literal = self.policy.check_host(host)
        if literal is not None:
            return [{
                'hostname': host, 'host': str(literal), 'port': port,
                'family': socket.AF_INET6 if literal.version == 6
                else socket.AF_INET,
                'proto': 0, 'flags': socket.AI_NUMERICHOST}]
        infos = await self.inner.resolve(host, port, family)
        self.policy.check_resolved(
            host, [ipaddress.ip_address(i['host'].split('%', 1)[0])
                   for i in infos])
        return infos

    async def close(self):
        if self.inner is not None:
            await self.inner.close()

    async def resolve_one(self, host, port):
        """Resolve for non-aiohttp protocols (FTP): one permitted address."""
        infos = await self.resolve(host, port, socket.AF_UNSPEC)
        if not infos:
            raise socket.gaierror(socket.EAI_NODATA, 'No address')
        return infos[0]['host'], infos[0]['family']


__all__ = ['AddressPolicy', 'Forbidden', 'GuardedResolver', 'StaticResolver',
           'parse_address']
