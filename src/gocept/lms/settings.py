"""Product configuration: `<product-config gocept.lms>` in etc/zope.conf.

`ISettings` (interfaces.py) lists every key with its default; keys are
written with dashes in the configuration file (`sync-interval 23`).
"""

import zope.app.appsetup.product
import zope.interface
import zope.schema

import gocept.lms.checking.settings
import gocept.lms.interfaces


# Keys for gocept.lms.checking.settings.CheckerSettings.
CHECKER_PREFIX = 'checker-'


@zope.interface.implementer(gocept.lms.interfaces.ISettings)
class Settings:

    def __init__(self, values=None):
        values = values or {}
        known = zope.schema.getFields(gocept.lms.interfaces.ISettings)
        unknown = {k for k in values if not k.startswith(CHECKER_PREFIX)} - {
            k.replace('_', '-') for k in known}
        if unknown:
            raise ValueError(
                'Unknown gocept.lms settings: %s' % ', '.join(sorted(unknown)))
        for name, field in known.items():
            raw = values.get(name.replace('_', '-'))
            if raw is None:
                value = field.default
            elif isinstance(raw, str) and hasattr(field, 'fromUnicode'):
                value = field.bind(self).fromUnicode(raw.strip())
            else:
                value = raw
            setattr(self, name, value)


def _raw():
    return zope.app.appsetup.product.getProductConfiguration(
        'gocept.lms') or {}


def get():
    """The settings of this process."""
    return Settings(_raw())


def checker():
    """The CheckerSettings of this process."""
    return gocept.lms.checking.settings.CheckerSettings.from_dict(
        _raw(), prefix=CHECKER_PREFIX)
