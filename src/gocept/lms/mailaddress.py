"""Whether a mail address is well-formed (RFC 5321's addr-spec).

One rule for every address the LMS meets: the recipients of mailto URLs
the checker checks, and the contact addresses clients are registered
with. Only the syntax is judged here; whether the domain takes mail is
the checker's question (checking/mailto.py), whether the box exists the
mail server's.
"""

import re
import socket


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf'{_ATOM}(\.{_ATOM})*')
_QUOTED = re.compile(r'"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_LABEL = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)')


def address_problem(address):
    """Why `address` is not a valid addr-spec, or None if it is."""
    if len(address) > 254:
        return 'longer than 254 characters'
    local, at, domain = address.rpartition('@')
    if not at:
        return 'no @'
    if not local:
        return 'empty local part'
    if len(local) > 64:
        return 'local part longer than 64 characters'
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED.fullmatch(local)):
        return f'invalid local part {local!r}'
    if domain.startswith('[') and domain.endswith(']'):
        literal = domain[1:-1]
        if literal.lower().startswith('ipv6:'):
            literal = literal[5:]
        try:
            socket.inet_pton(
                socket.AF_INET6 if ':' in literal else socket.AF_INET,
                literal)
        except OSError:
            return f'invalid address literal {domain!r}'
        return None
    try:
        ascii_domain = domain.encode('idna').decode('ascii')
    except UnicodeError:
        return f'invalid domain {domain!r}'
    labels = ascii_domain.rstrip('.').split('.')
    if len(labels) < 2:
        return f'domain {domain!r} has no dot'
    for label in labels:
        if not _LABEL.fullmatch(label):
            return f'invalid domain {domain!r}'
    return None
