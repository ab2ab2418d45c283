"""The state policy: from what happened on the wire to a URL's state.

Pure functions only; no I/O, no clock. `decide` is the entry point, the
operator's guide is policy.txt beside this module.

Network code describes what happened as an `Outcome`; the policy combines
it with the URL's `History` (a tiny immutable record of the current run of
failures, stored on the URL object) and returns a `Decision`.
"""

import collections
import datetime

from gocept.lms.interfaces import OK, TEMPORARY_UNAVAILABLE, UNAVAILABLE
from gocept.lms.interfaces import UNSUPPORTED
# The knobs of the policy (PolicySettings) are defined in settings.py.
from gocept.lms.checking.settings import DAY, HOUR, PolicySettings


class Outcome(collections.namedtuple(
        'Outcome', 'kind detail status retry_after')):
    """What one check observed.

    kind
        one of the `KIND_*` constants below
    detail
        human-readable evidence, used as (the start of) the reason
    status
        the HTTP status code for kind ``http``, else None
    retry_after
        seconds the server asked us to wait (429/503), else None
    """

    __slots__ = ()

    def __new__(cls, kind, detail='', status=None, retry_after=None):
        return super().__new__(cls, kind, detail, status, retry_after)


KIND_OK = 'ok'                    # non-HTTP success (FTP, mailto)
KIND_HTTP = 'http'                # an HTTP answer, see `status`
KIND_MISSING = 'missing'          # definite "not there" outside HTTP (FTP 550)
KIND_NXDOMAIN = 'nxdomain'        # the host name does not exist
KIND_DNS = 'dns'                  # resolution failed for now (SERVFAIL, ...)
KIND_REFUSED = 'refused'          # connection refused
KIND_RESET = 'reset'              # reset or cut before a full answer
KIND_TIMEOUT = 'timeout'          # connect or read timeout
KIND_TLS = 'tls'                  # certificate or handshake failure
KIND_REDIRECT = 'redirect'        # redirect loop, too many or bad redirects
KIND_PROTOCOL = 'protocol'        # a malformed answer
KIND_TRANSIENT = 'transient'      # other failure worth retrying
KIND_PERMANENT = 'permanent'      # other failure not expected to recover
KIND_FORBIDDEN = 'forbidden'      # refused by the address guard
KIND_UNSUPPORTED = 'unsupported'  # no handler for the scheme
KIND_INVALID = 'invalid'          # the URL cannot be checked as written
KIND_BOT_WALL = 'bot wall'        # "you look like a robot", not "gone"
KIND_REDIRECT_HOME = 'redirected home'  # a deep link ends at the home page
KIND_NO_ANCHOR = 'no anchor'      # the page lacks the URL's #fragment

# How a failure counts. DEFINITE failures use the shorter window.
CLASS_OK = 'ok'
CLASS_DEFINITE = 'definite'
CLASS_TRANSIENT = 'transient'
CLASS_PERMANENT = 'permanent'
CLASS_UNSUPPORTED = 'unsupported'
CLASS_INVALID = 'invalid'
CLASS_BOT_WALL = 'bot wall'

_KIND_CLASS = {
    KIND_OK: CLASS_OK,
    KIND_MISSING: CLASS_DEFINITE,
    KIND_NXDOMAIN: CLASS_DEFINITE,
    KIND_DNS: CLASS_TRANSIENT,
    KIND_RESET: CLASS_TRANSIENT,
    KIND_TIMEOUT: CLASS_TRANSIENT,
    KIND_TRANSIENT: CLASS_TRANSIENT,
    KIND_REFUSED: CLASS_PERMANENT,
    KIND_TLS: CLASS_PERMANENT,
    KIND_REDIRECT: CLASS_PERMANENT,
    KIND_PROTOCOL: CLASS_PERMANENT,
    KIND_PERMANENT: CLASS_PERMANENT,
    KIND_FORBIDDEN: CLASS_UNSUPPORTED,
    KIND_UNSUPPORTED: CLASS_UNSUPPORTED,
    KIND_INVALID: CLASS_INVALID,
    KIND_BOT_WALL: CLASS_BOT_WALL,
    KIND_REDIRECT_HOME: CLASS_PERMANENT,
    KIND_NO_ANCHOR: CLASS_PERMANENT,
}


# Answers that mean "too many requests" or "you look like a robot" (999 is
# what some social networks send crawlers) rather than "not there".
BOT_WALL_STATUS = frozenset([429, 999])

# A run of failures doubles the wait up to `interval`; beyond this many
# doublings the wait is the interval anyway, and 2 ** failures would grow
# without bound (a float overflows at 1,024).
MAX_DOUBLINGS = 32


def classify_status(status):
    """The class of an HTTP status code (the code table)."""
    if 100 <= status < 400 or status == 401:
        return CLASS_OK
    if status in (404, 410):
        return CLASS_DEFINITE
    if status in BOT_WALL_STATUS:
        return CLASS_BOT_WALL
    if status == 408 or 500 <= status < 600:
        return CLASS_TRANSIENT
    # other 4xx (403 bot walls included) and codes outside the standard
    return CLASS_PERMANENT


def classify(outcome):
    if outcome.kind == KIND_HTTP:
        return classify_status(outcome.status)
    return _KIND_CLASS[outcome.kind]


class History(collections.namedtuple(
        'History', 'since failures kind unavailable')):
    """The current run of failures of one URL; None while it is fine.

    since
        when the first failure of the run was seen (epoch seconds)
    failures
        how many checks in a row failed
    kind
        the kind (or ``http <status>``) of the latest failure
    unavailable
        whether the run already reached its window; it then stays
        `unavailable` whatever the next failure looks like
    """

    __slots__ = ()


class Decision(collections.namedtuple(
        'Decision', 'state reason next_check history')):
    """The verdict: state string, reason, seconds until the next check and
    the history to store (None once the URL is fine)."""

    __slots__ = ()


class Result(collections.namedtuple(
        'Result', 'key state reason next_check history checked_at')):
    """One finished check, as the checker stores it: the `Decision` for
    the URL `key`, and when it was made.

    key
        as passed in
    state, reason
        for the URL object (`state` one of the protocol's state strings)
    next_check
        seconds from `checked_at` until the URL is due again
    history
        the `History` to store on the URL (None once it is fine)
    checked_at
        timezone-aware UTC datetime of the end of the check

    Here rather than beside the engine that makes them: bin/checker's
    database process unpickles these, and needs nothing of the network
    side to do so.
    """

    __slots__ = ()


def _when(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')


def _kind_label(outcome):
    if outcome.kind == KIND_HTTP:
        return f'http {outcome.status}'
    return outcome.kind


def decide(outcome, history, now, settings=PolicySettings()):
    """Combine one check's `outcome` with the URL's `history` at `now`.

    `now` is epoch seconds. Returns a `Decision`.
    """
    cls = classify(outcome)
    interval = max(settings.interval, settings.min_interval)
    if cls == CLASS_OK:
        return Decision(OK, outcome.detail, interval, None)
    if cls == CLASS_UNSUPPORTED:
        return Decision(UNSUPPORTED, outcome.detail, interval, None)
    if cls == CLASS_INVALID:
        return Decision(UNAVAILABLE, outcome.detail, interval, None)
    if cls == CLASS_BOT_WALL:
        return _bot_wall(outcome, history, settings)

    if history is None:
        since, failures, unavailable = now, 1, False
    else:
        # a plain tuple read back from storage is as good
        history = History(*history)
        since = history.since
        failures = history.failures + 1
        unavailable = history.unavailable

    if cls == CLASS_DEFINITE:
        needed, span = settings.definite_failures, settings.definite_span
    else:
        needed, span = settings.failures, settings.failure_span
    if failures >= needed and now - since >= span:
        unavailable = True
    new_history = History(since, failures, _kind_label(outcome), unavailable)

    if unavailable:
        state = UNAVAILABLE
        next_check = interval
        reason = (f'{outcome.detail} (failing since {_when(since)}, '
                  f'{failures} checks)')
    else:
        state = TEMPORARY_UNAVAILABLE
        backoff = settings.retry_interval * 2 ** min(
            failures - 1, MAX_DOUBLINGS)
        next_check = min(backoff, interval)
        if failures + 1 >= needed:
            # Come back when the window can close, not a day later.
            next_check = min(next_check, since + span - now)
        if failures == 1:
            reason = f'{outcome.detail} (first failure)'
        else:
            reason = (f'{outcome.detail} (failing since {_when(since)}, '
                      f'{failures} checks)')
    if outcome.retry_after is not None:
        next_check = max(next_check,
                         min(outcome.retry_after, settings.max_retry_after))
    next_check = max(next_check, settings.min_interval)
    return Decision(state, reason, next_check, new_history)


def _bot_wall(outcome, history, settings):
    """A bot wall says nothing about the link: the run of failures (if
    any) stays as it is, neither counted on nor ended. A link that was red
    stays red; any other is `temporary unavailable`, as nobody knows, and
    is tried again after `retry_interval` (or the server's Retry-After)."""
    unavailable = history is not None and History(*history).unavailable
    state = UNAVAILABLE if unavailable else TEMPORARY_UNAVAILABLE
    next_check = settings.retry_interval
    if outcome.retry_after is not None:
        next_check = max(next_check,
                         min(outcome.retry_after, settings.max_retry_after))
    next_check = max(next_check, settings.min_interval)
    return Decision(state, f'{outcome.detail} (not counted as a failure)',
                    next_check, history)
