"""The LMS's time: timezone-aware UTC.

Every moment the model stores (last sync, last push, when a URL was
checked) is an aware UTC datetime, so that times from different processes
and machines compare without surprises.
"""

import datetime


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def when(dt, unknown=''):
    """A moment for people, in pages and mails: '2026-05-01 12:01 UTC';
    `unknown` for None."""
    return dt.strftime('%Y-%m-%d %H:%M UTC') if dt is not None else unknown
