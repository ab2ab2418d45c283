"""Checking mailto URLs: address syntax, optionally the domain's mail DNS.

Nothing is ever sent to a mail server. The DNS check (off by default,
`mx_check`) asks whether the domain can receive mail at all: it has an MX
record, or, as RFC 5321 allows, an address. Without dnspython installed
only the address lookup is possible, which is the fallback rule anyway.
"""

import socket
import urllib.parse

from gocept.lms.checking.policy import Outcome
from gocept.lms.mailaddress import address_problem
from gocept.lms.checking import policy as p


def addresses(url):
    """The recipient addresses of a mailto URL (RFC 6068)."""
    rest = url.split(':', 1)[1] if ':' in url else ''
    to, _, query = rest.partition('?')
    result = [urllib.parse.unquote(a).strip() for a in to.split(',') if a]
    for name, value in urllib.parse.parse_qsl(query):
        if name.lower() in ('to', 'cc', 'bcc'):
            result.extend(v.strip() for v in value.split(',') if v.strip())
    return result


async def _default_mx_lookup(domain, resolver):
    """True if the domain has MX records or an address; raises gaierror."""
    try:
        import dns.asyncresolver
        import dns.resolver
    except ImportError:
        pass
    else:
        try:
            answer = await dns.asyncresolver.resolve(domain, 'MX')
            return bool(list(answer))
        except dns.resolver.NXDOMAIN:
            raise socket.gaierror(socket.EAI_NONAME, 'NXDOMAIN')
        except dns.resolver.NoAnswer:
            pass
    infos = await resolver.resolve(domain, 0, socket.AF_UNSPEC)
    return bool(infos)


async def check_mailto(url, settings, resolver=None, mx_lookup=None):
    """Check one mailto URL; return an `Outcome`.

    `mx_lookup(domain)` (a coroutine function) replaces the DNS check in
    tests; it returns whether the domain takes mail and raises
    socket.gaierror like getaddrinfo.
    """
    found = addresses(url)
    if not found:
        return Outcome(p.KIND_INVALID, 'mailto URL without an address')
    for address in found:
        problem = address_problem(address)
        if problem:
            return Outcome(p.KIND_INVALID,
                           f'invalid mail address {address[:100]!r}: {problem}')
    if not settings.mx_check:
        return Outcome(p.KIND_OK, 'mail address syntax valid')
    domains = sorted({a.rpartition('@')[2].lower() for a in found
                      if not a.endswith(']')})
    for domain in domains:
        try:
            if mx_lookup is not None:
                takes_mail = await mx_lookup(domain)
            else:
                takes_mail = await _default_mx_lookup(domain, resolver)
        except socket.gaierror as e:
            if e.errno in (socket.EAI_NONAME,
                           getattr(socket, 'EAI_NODATA', -5)):
                return Outcome(p.KIND_NXDOMAIN,
                               f'mail domain {domain} does not exist')
            return Outcome(p.KIND_DNS, f'DNS lookup of {domain} failed: {e}')
        except OSError as e:
            return Outcome(p.KIND_DNS, f'DNS lookup of {domain} failed: {e}')
        if not takes_mail:
            return Outcome(p.KIND_PERMANENT,
                           f'mail domain {domain} has no MX and no address')
    return Outcome(p.KIND_OK, 'mail address syntax valid, domain takes mail')
