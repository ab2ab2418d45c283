"""The sync window: what the API does while a client's sync runs wins.

A sync reconciles the LMS with the client's list as it was when the sync
fetched it. A URL the client registers or unregisters over the API after
that moment is newer word than the list, and the sync leaves it as the
API left it. Otherwise the sync would take back an acknowledged
registration (a URL unregistered and registered again while the sync
runs) or bring back a URL the client has just unregistered.

While a client's sync runs, its ISynchronization holds a `Touched` set:
the hashes (`url.url_hash`) of the URLs the API registered or
unregistered for the client since the sync began. Outside a sync the
window is closed and the API writes nothing here.

syncwindow.txt tells the story with two processes.
"""

import BTrees.LLBTree

import gocept.lms.url
from gocept.lms.interfaces import ISynchronization


class Touched(BTrees.LLBTree.LLTreeSet):
    """Hashes of URL strings the API touched during the running sync.

    Hashes, not URL keys: an unregistered URL may have lost its record,
    and the sync knows the client's list by its strings. Two URLs that
    share a hash are both left alone until the next sync, which is
    harmless."""


def begin(client):
    """Start noting the API's calls for `client`: the sync begins.

    Commit this before the client's list is fetched."""
    ISynchronization(client).touched = Touched()


def end(client):
    """Stop noting: the sync ended, in success or failure."""
    state = ISynchronization(client)
    if state.touched is not None:
        state.touched = None


def note(client, urls):
    """The API registered or unregistered `urls` (strings) for `client`."""
    touched = ISynchronization(client).touched
    if touched is not None:
        touched.update([gocept.lms.url.url_hash(url) for url in urls
                        if gocept.lms.url.is_valid(url)])


def untouched(client, items, string=lambda url: url):
    """The items among `items` (URL strings, or whatever `string` gives a
    URL string of) whose URL the API did not touch since the sync began:
    the ones the sync may change."""
    touched = ISynchronization(client).touched
    if not touched:
        return list(items)
    return [item for item in items
            if gocept.lms.url.url_hash(string(item)) not in touched]
