"""The host a URL's requests go to.

The engine paces requests and caches names by host, for http, https and
ftp URLs alike, and the schedule puts every URL of one host into one
shard, so that one checker serves a host (schedule.txt). All of them must
name a host the same way (lower case, IDNA, as the requests do); this
module is light enough for the site model to import (it needs no aiohttp).
"""

import re

import yarl


# The host of most URLs, found without parsing the whole URL (which costs
# ten times as much); anything unusual is left to yarl.
_PLAIN_HOST = re.compile(
    r'(?:[Hh][Tt][Tt][Pp][Ss]?|[Ff][Tt][Pp])://(?:[^/?#@]*@)?'
    r'([A-Za-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|\Z)')


def host_of(url):
    """The host of an http, https or ftp URL, as its requests name it
    (lower case, IDNA), or None."""
    if not isinstance(url, str):
        return None
    match = _PLAIN_HOST.match(url)
    if match is not None:
        return match.group(1).lower()
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ('http', 'https', 'ftp') or not parsed.raw_host:
        return None
    return parsed.raw_host.lower()


def host_or_domain(url):
    """What pacing knows a URL by: the host of an http, https or ftp
    URL, the domain of a mailto address, else the URL itself."""
    host = host_of(url)
    if host is not None:
        return host
    if isinstance(url, str) and url[:7].lower() == 'mailto:':
        return url.rpartition('@')[2].split('?')[0].lower()
    return url
