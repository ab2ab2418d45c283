"""Failed logins, counted per name and per remote address, and throttled.

Every XML-RPC call of a client carries the client's id and password, the
management calls carry the admin secret, and the ZMI takes HTTP basic
auth. Unchecked, anybody can guess as fast as the web server answers
(620 wrong client passwords a second were measured), each guess costs a
password hash, and the log gets a line per guess. So the LMS counts failed
logins per *name* (a client id, the admin secret, a ZMI login) and per
remote *address*. After a burst of failures it refuses further attempts
of that name, or from that address, without looking at the password,
until the count has decayed again; a quiet name is forgotten after one
window. The log gets the first failure after a quiet spell (written by
the caller, who knows what was called) and then one summary per window.
throttle.txt shows all of it.

The counts live in the memory of each web process, not in the ZODB. In
the database every failed guess would be a write: an attacker could make
the database grow, and make the web processes' transactions conflict with
each other and with the checker, just by guessing, which is the denial of
service the throttle is there to prevent. A web process throttles on its
own and forgets when it restarts; that still slows guessing from hundreds
a second to a few a minute. The memory is bounded: past
`Limits.entries` names and addresses, the one that failed longest ago is
forgotten.
"""

import collections
import logging
import math
import threading
import time
import typing


log = logging.getLogger(__name__)

# Characters of a name or an address that are kept. Both come from the
# caller, and so does their length.
LABEL_LENGTH = 100

# Other names (of an address) or addresses (of a name) a summary line
# lists; beyond that it says "and others".
LISTED = 5

# Names and addresses a summary gets a line each for, those with the most
# attempts first; the others share one more line.
REPORT_LINES = 10


class Limits(typing.NamedTuple):
    """How much failure is tolerated (the login-* settings, ISettings).

    `per_name` failed logins of one name, or `per_address` from one
    address, within `window` seconds are tolerated; beyond that attempts
    are refused. 0 switches the limit off (the failures are still counted
    and logged). `entries`: names and addresses remembered at most.
    """

    per_name: int
    per_address: int
    window: float
    entries: int

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.login_failures,
                   settings.login_failures_per_address,
                   settings.login_window, settings.login_throttle_entries)


class Refusal(typing.NamedTuple):
    """A refused attempt: try again in `seconds`; `reason` says whose
    failures it is, e.g. "for client 'fred'" or "from 192.0.2.7"."""

    seconds: int
    reason: str


# The two kinds of counts, in the words the log and the refusals use
# ("for client 'fred'", "from 192.0.2.7").
NAME, ADDRESS = 'for', 'from'


class _Entry:
    """The failures of one name or one address."""

    __slots__ = ('level', 'updated', 'failures', 'refused', 'others',
                 'more')

    def __init__(self, now):
        # A leaky bucket: each failure adds one, and it drains at `limit`
        # per window.
        self.level = 0.0
        self.updated = now
        # Since the last summary:
        self.failures = 0
        self.refused = 0
        self.others = {}  # the addresses of a name, the names of an address
        self.more = False

    def drain(self, limit, window, now):
        if limit:
            self.level = max(
                0.0, self.level - (now - self.updated) * limit / window)
        else:
            self.level = 0.0
        self.updated = now


class LoginThrottle:
    """Failed logins of one process (thread-safe).

    `clock` answers seconds (monotonic); `schedule(delay, function)`, if
    given, calls `function` after `delay` seconds and returns something
    with a `cancel()` method (a `threading.Timer`): it writes the summary
    of a window when no login attempt comes along to do it.
    """

    def __init__(self, clock=time.monotonic, schedule=None):
        self.clock = clock
        self.schedule = schedule
        self._lock = threading.Lock()
        # (NAME or ADDRESS, label) -> _Entry; the one that failed longest
        # ago first.
        self._entries = collections.OrderedDict()
        # Start of the window the next summary covers; None while nothing
        # happened since the last one.
        self._since = None
        self._forgotten = 0
        self._timer = None

    def refusal(self, name, address, limits):
        """A `Refusal` if an attempt to log in as `name` from `address`
        must be refused now, else None.

        Call it before looking at the password. A refusal is counted for
        the summary, not as a failure: hammering on does not make the
        penalty longer.
        """
        keys = _keys(name, address, limits)
        now = self.clock()
        with self._lock:
            lines = self._report_if_due(now, limits)
            wait, reason = 0.0, None
            for key, limit, other in keys:
                entry = self._entries.get(key)
                if entry is None or not limit:
                    continue
                entry.drain(limit, limits.window, now)
                # Another failure must still fit into the bucket.
                excess = entry.level + 1 - limit
                if excess > 0 and excess * limits.window / limit > wait:
                    wait = excess * limits.window / limit
                    reason = '%s %s' % key
            if reason is not None:
                for key, limit, other in keys:
                    entry = self._entries.get(key)
                    if entry is not None:
                        entry.refused += 1
                if self._since is None:
                    self._begin(now, limits)
        _write(lines)
        if reason is None:
            return None
        return Refusal(max(1, math.ceil(wait)), reason)

    def failed(self, name, address, limits):
        """Count a failed login as `name` from `address`.

        Returns True for the first failure after a quiet spell: the caller
        writes a log line for that one, with what it knows of the attempt;
        the others are summed up once per window.
        """
        keys = _keys(name, address, limits)
        now = self.clock()
        with self._lock:
            lines = self._report_if_due(now, limits)
            for key, limit, other in keys:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry(now)
                else:
                    self._entries.move_to_end(key)
                    entry.drain(limit, limits.window, now)
                if limit:
                    entry.level += 1
                entry.failures += 1
                if other in entry.others or len(entry.others) < LISTED:
                    entry.others[other] = True
                else:
                    entry.more = True
            while len(self._entries) > limits.entries:
                key, entry = self._entries.popitem(last=False)
                self._forgotten += entry.failures
            first = self._since is None
            if first:
                self._begin(now, limits)
        _write(lines)
        return first

    def report(self, limits):
        """Write the summary of what happened since the last one now,
        whether its window is over or not."""
        with self._lock:
            lines = self._report(self.clock(), limits)
        _write(lines)

    def close(self):
        """Stop the timer of the next summary (tests)."""
        with self._lock:
            timer = self._timer
            self._cancel()
            self.schedule = None
        if isinstance(timer, threading.Thread) and (
                timer is not threading.current_thread()):
            timer.join()

    # Under the lock

    def _begin(self, now, limits):
        self._since = now
        if self.schedule is not None:
            self._cancel()
            # A little late rather than early, so that the window is over
            # by the clock when the timer fires.
            self._timer = self.schedule(
                limits.window + 1, lambda: self._tick(limits))

    def _cancel(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self, limits):
        with self._lock:
            lines = self._report_if_due(self.clock(), limits)
        _write(lines)

    def _report_if_due(self, now, limits):
        if self._since is None or now - self._since < limits.window:
            return []
        return self._report(now, limits)

    def _report(self, now, limits):
        if self._since is None:
            return []
        heading = 'Failed logins in the last %d s:' % round(now - self._since)
        busy = sorted(
            ((key, entry) for key, entry in self._entries.items()
             if entry.failures or entry.refused),
            key=lambda item: -(item[1].failures + item[1].refused))
        lines = []
        for (kind, label), entry in busy[:REPORT_LINES]:
            line = '%s %d %s %s' % (heading, entry.failures, kind, label)
            if entry.others:
                line += ', %s %s' % (NAME if kind == ADDRESS else ADDRESS,
                                     ', '.join(entry.others))
            if entry.more:
                line += ' and others'
            if entry.refused:
                line += '; attempts refused while throttled: %d' % (
                    entry.refused)
            lines.append(line)
        rest = busy[REPORT_LINES:]
        if rest:
            failures = sum(entry.failures for key, entry in rest)
            lines.append(
                '%s %d more counted for %d other names and addresses'
                % (heading, failures, len(rest)))
        if self._forgotten:
            lines.append(
                '%s %d more counted for names and addresses forgotten to '
                'make room' % (heading, self._forgotten))
        for key, entry in list(self._entries.items()):
            entry.failures = entry.refused = 0
            entry.others = {}
            entry.more = False
            entry.drain(limits.per_name if key[0] == NAME
                        else limits.per_address, limits.window, now)
            if not entry.level:
                # Nothing left to remember.
                del self._entries[key]
        self._forgotten = 0
        self._since = None
        self._cancel()
        if lines:
            # The failures may go on: the next summary is due in a window.
            self._begin(now, limits)
        return lines


def _keys(name, address, limits):
    name, address = _label(name), _label(address)
    return [((NAME, name), limits.per_name, address),
            ((ADDRESS, address), limits.per_address, name)]


def _label(text):
    text = str(text)
    if len(text) > LABEL_LENGTH:
        text = text[:LABEL_LENGTH - 3] + '...'
    return text


def _write(lines):
    # Outside the lock: a slow log handler does not hold up logins.
    for line in lines:
        log.warning('%s', line)


# The throttle of this process

_process = None
_process_lock = threading.Lock()


def _timer(delay, function):
    timer = threading.Timer(delay, function)
    timer.daemon = True
    timer.start()
    return timer


def logins():
    """The LoginThrottle of this process, made on first use."""
    global _process
    with _process_lock:
        if _process is None:
            _process = LoginThrottle(schedule=_timer)
        return _process


def reset():
    """Forget every failed login of this process (tests start with none)."""
    global _process
    with _process_lock:
        if _process is not None:
            _process.close()
        _process = None
