"""Each client's monitoring figures, kept in one place.

`@@metrics` shows five figures per client: whether pushes are on, failed
pushes in a row, the last push, failed syncs and the last sync. They live
in two annotations of each client (`INotifications`, `ISynchronization`),
so a scrape on a fresh process would load four objects per client, four
thousand for a thousand clients. This utility keeps a copy of just those
figures in one BTree, written whenever one of them changes: a scrape
loads a few dozen buckets instead.

The rows are keyed by ``(client id, part)``; the notifier and the web
write the ``notify`` part, the syncer the ``sync`` part. Writers of
different rows meet at most in a bucket, and buckets merge changes to
different keys, so the copy adds no conflict between the processes that
the annotations did not have already. clientfigures.txt tells the story.
"""

import BTrees.OOBTree
import persistent
import zope.component
import zope.container.contained
import zope.interface

from gocept.lms.interfaces import IClientFigures


NOTIFY = 'notify'
SYNC = 'sync'

#: which attributes of which annotation make a part's row, in order
PARTS = {
    NOTIFY: ('enabled', 'failed', 'last'),
    SYNC: ('failures', 'last'),
}


def _ordered(row):
    # None (a time not known yet) before any value at its place.
    return tuple((value is not None, value) for value in row)


class Row(tuple):
    """One row's figures, in the order of PARTS.

    A plain tuple holding None at a place where the other holds a time
    cannot be compared with `<`, and BTrees compare values with `<` when
    they resolve a conflict: two writers of one row then logged a
    TypeError from the conflict resolution instead of meeting a plain
    ConflictError and its retry. Rows order None first, and compare with
    the plain tuples of rows stored before.
    """

    __slots__ = ()

    def __lt__(self, other):
        return _ordered(self) < _ordered(other)

    def __le__(self, other):
        return _ordered(self) <= _ordered(other)

    def __gt__(self, other):
        return _ordered(self) > _ordered(other)

    def __ge__(self, other):
        return _ordered(self) >= _ordered(other)


class Rows(BTrees.OOBTree.OOBTree):
    """(client id, part) -> tuple of figures. Written by pushes and syncs
    of single clients, in no order: small buckets."""

    max_leaf_size = 16
    max_internal_size = 32


@zope.interface.implementer(IClientFigures)
class ClientFigures(zope.container.contained.Contained,
                    persistent.Persistent):

    def __init__(self):
        self._rows = Rows()

    def note(self, client_id, part, values):
        """See IClientFigures."""
        key = (client_id, part)
        values = Row(values)
        if self._rows.get(key) != values:
            self._rows[key] = values

    def forget(self, client_id):
        """See IClientFigures."""
        for part in PARTS:
            self._rows.pop((client_id, part), None)

    def figures(self):
        """See IClientFigures."""
        result = {}
        for (client_id, part), values in self._rows.items():
            result.setdefault(client_id, {})[part] = dict(
                zip(PARTS[part], values))
        return result


def note(state, part):
    """Copy the figures of the annotation `state` (of `part`) to the
    site's utility, if the site has one (generation 8 gives it)."""
    client = state.__parent__
    if client is None or client.__parent__ is None:
        return  # not stored in a site (yet)
    figures = zope.component.queryUtility(IClientFigures, context=client)
    if figures is not None:
        figures.note(client.id, part,
                     [getattr(state, name) for name in PARTS[part]])


class Noted:
    """Mix-in for the annotations: setting one of the part's attributes
    notes the part's figures anew."""

    figures_part = None

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in PARTS[self.figures_part]:
            note(self, self.figures_part)
