"""What the checks can be told: the schemas of the policy and the engine.

`IPolicySettings` holds the knobs of the state policy (policy.py),
`ICheckerSettings` those of the engine (engine.py) on top; in etc/zope.conf
each is a `checker-` key (`checker-per-host-rate 1`, `checker-interval
12h`). As for the LMS's own settings (gocept.lms.settings), the schema's
fields turn the configuration's strings into values (`fromUnicode`) and
say what a value may be; `PolicySettings` and `CheckerSettings` are the
read-only records the policy and the engine are given.

Nothing here needs the network: the checker process, the web server's
monitoring views and the tests read these without loading aiohttp.
"""

import ipaddress
import re

import zope.interface
import zope.schema


HOUR = 3600
DAY = 24 * HOUR

DEFAULT_USER_AGENT = (
    'gocept.lms/4 (link monitoring server; +https://github.com/gocept)')


def parse_cidrs(value):
    """Parse an allow-list given as whitespace/comma separated CIDRs."""
    if not value:
        return ()
    if isinstance(value, str):
        value = value.replace(',', ' ').split()
    return tuple(ipaddress.ip_network(v, strict=False) for v in value)


# Fields for the strings of a configuration file

class Number(zope.schema.Float):
    """A float field that takes an int as well (2 for 2.0)."""

    _type = (int, float)


_DURATION = re.compile(r'\s*([0-9.]+)\s*([smhd]?)\s*')
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}


class Seconds(Number):
    """A time in seconds; written with a unit if wished: 90, 30s, 5m, 6h,
    2d."""

    def fromUnicode(self, value):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise zope.schema.ValidationError(
                'not a number of seconds (90, 30s, 5m, 6h, 2d): %r' % value)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        self.validate(seconds)
        return seconds


_SWITCH = {'on': True, 'true': True, 'yes': True, '1': True,
           'off': False, 'false': False, 'no': False, '0': False}


class Switch(zope.schema.Bool):
    """On or off; anything but on/off, true/false, yes/no, 1/0 is an error
    (zope.schema's Bool would read a typo as off)."""

    def fromUnicode(self, value):
        try:
            result = _SWITCH[value.strip().lower()]
        except KeyError:
            raise zope.schema.ValidationError(
                'not on or off: %r' % value)
        self.validate(result)
        return result


class Networks(zope.schema.Tuple):
    """IP networks in CIDR notation, kept as normalised strings; written
    separated by spaces or commas."""

    def __init__(self, **kw):
        super().__init__(value_type=zope.schema.TextLine(), **kw)

    def normalize(self, value):
        return tuple(str(network) for network in parse_cidrs(value))

    def fromUnicode(self, value):
        result = self.normalize(value)
        self.validate(result)
        return result


def _positive(value):
    return value > 0


# The schemas

class IPolicySettings(zope.interface.Interface):
    """The knobs of the state policy, all times in seconds."""

    interval = Seconds(
        title='Re-check interval of URLs that are fine, unavailable or '
              'unsupported', default=DAY, min=0)
    retry_interval = Seconds(
        title='First re-check of a failing URL; doubled per failure up to '
              '`interval`', default=6 * HOUR, min=0)
    min_interval = Seconds(
        title='No URL is checked more often than this, Retry-After '
              'included', default=HOUR, min=0)
    max_retry_after = Seconds(
        title='A longer Retry-After is cut to this', default=7 * DAY, min=0)
    definite_failures = zope.schema.Int(
        title='404, 410, FTP 550, NXDOMAIN: failures needed',
        default=2, min=1)
    definite_span = Seconds(
        title='404, 410, FTP 550, NXDOMAIN: minimal span of the failures',
        default=DAY, min=0)
    failures = zope.schema.Int(
        title='Every other failure: failures needed', default=3, min=1)
    failure_span = Seconds(
        title='Every other failure: minimal span of the failures',
        default=2 * DAY, min=0)


class ICheckerSettings(IPolicySettings):
    """Everything the checker can be told; times in seconds."""

    concurrency = zope.schema.Int(
        title='Checks in flight at the same time', default=20, min=1)
    per_host_rate = Number(
        title='Requests per second to one host; 0 turns pacing off',
        default=1.0, min=0)
    connect_timeout = Seconds(
        title='TCP connect (and TLS handshake start) limit', default=10.0,
        constraint=_positive)
    read_timeout = Seconds(
        title='Limit for every single read from the socket', default=15.0,
        constraint=_positive)
    total_timeout = Seconds(
        title='Limit for one request from connect to the end of the '
              'headers', default=60.0, constraint=_positive)
    max_redirects = zope.schema.Int(
        title='Redirect hops followed before giving up', default=10, min=0)
    body_cap = zope.schema.Int(
        title='Bytes of a GET body read at most (to keep small answers\' '
              'connections)', default=16384, min=0)
    user_agent = zope.schema.TextLine(
        title='The User-Agent header of every request',
        default=DEFAULT_USER_AGENT)
    allow_cidrs = Networks(
        title='CIDR ranges allowed although the guard refuses them '
              'otherwise', default=())
    mx_check = Switch(
        title='Check that mailto domains take mail (DNS); off: syntax only',
        default=False)
    keepalive_timeout = Seconds(
        title='Seconds an idle keep-alive connection is kept', default=30.0,
        min=0)
    dns_cache_ttl = Seconds(
        title='Seconds a (checked) DNS answer is reused', default=60.0,
        min=0)
    dns_timeout = Seconds(
        title='Seconds a name resolution may take; longer is a transient '
              'failure', default=10.0, constraint=_positive)
    dns_failure_ttl = Seconds(
        title='Seconds a failed resolution (no such name, no answer) is '
              'reused', default=60.0, min=0)
    dns_cache_size = zope.schema.Int(
        title='Names kept in the DNS cache at most', default=10000, min=0)
    check_fragments = Switch(
        title='Look for a URL\'s #fragment in its page (anchors.py)',
        default=True)
    anchor_body_cap = zope.schema.Int(
        title='Bytes of a page read at most to find a fragment\'s anchor',
        default=524288, min=0)
    get_first_for = Seconds(
        title='With a per-host rate: seconds for which a host whose HEAD '
              'answer failed is asked with GET straight away (0: always '
              'HEAD first)', default=600.0, min=0)


# The records

class Settings:
    """Read-only values of every field of `schema`: the defaults, changed
    by keyword arguments; a value the schema refuses is a ValueError."""

    schema = zope.interface.Interface

    def __init__(self, **values):
        fields = zope.schema.getFields(self.schema)
        unknown = set(values) - set(fields)
        if unknown:
            raise TypeError('unknown settings: %s' % ', '.join(sorted(unknown)))
        for name, field in fields.items():
            value = values.get(name, field.default)
            if hasattr(field, 'normalize'):
                value = field.normalize(value)
            try:
                field.bind(self).validate(value)
            except zope.schema.ValidationError as error:
                raise ValueError('%s: %s' % (name, _text(error)))
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError('settings are read-only')

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join(
            '%s=%r' % (name, getattr(self, name))
            for name in zope.schema.getFieldNamesInOrder(self.schema)))

    @classmethod
    def from_dict(cls, mapping, prefix=''):
        """Settings from the strings of a configuration (zope.conf's
        product configuration).

        Keys are the field names, with dashes or underscores. With a
        `prefix` (``checker-``, say) only keys starting with it are used
        and an unknown one is an error; without, unknown keys are ignored
        so the whole product configuration can be passed.
        """
        fields = zope.schema.getFields(cls.schema)
        values = {}
        for key, raw in mapping.items():
            if prefix:
                if not key.startswith(prefix):
                    continue
                key = key[len(prefix):]
            name = key.replace('-', '_')
            if name not in fields:
                if prefix:
                    raise ValueError('unknown checker setting: %s' % key)
                continue
            if isinstance(raw, str):
                try:
                    raw = fields[name].fromUnicode(raw.strip())
                except zope.schema.ValidationError as error:
                    raise ValueError('%s: %s' % (key, _text(error)))
                except ValueError as error:
                    raise ValueError('%s: %s' % (key, error))
            values[name] = raw
        return cls(**values)


def _text(error):
    return error.doc() if error.args else type(error).__name__


@zope.interface.implementer(IPolicySettings)
class PolicySettings(Settings):
    """The knobs of the state policy."""

    schema = IPolicySettings


@zope.interface.implementer(ICheckerSettings)
class CheckerSettings(PolicySettings):
    """Everything the checker can be told."""

    schema = ICheckerSettings
