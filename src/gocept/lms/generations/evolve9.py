"""Key every LMS site's URL index by host first (url.py, `index_key`).

The URLs of one host come together in the index, and the URL search index
keeps the names of the hosts only, finding their URLs there: registering
URLs writes one place per host instead of one per URL and another per
host. The index is built again from the URL strings, its hashes keyed
with a new secret of the site (url.py, `_salt`), with savepoints in
between, so a million URLs take bounded memory; the search index keeps
the names of its hosts and drops their sets of keys.
"""

import logging

import BTrees.OLBTree
import transaction

import gocept.lms.generations
import gocept.lms.url
import gocept.lms.urlsearch
from gocept.lms.interfaces import IURLProvider, IURLSearch


log = logging.getLogger(__name__)

# URLs indexed between savepoints.
CHUNK = 20000


def evolve(context):
    gocept.lms.generations.each_site(context, key_index_by_host)


def key_index_by_host(site):
    """Build the site's URL index anew and give its search index the host
    names only; False if it has them already."""
    sm = site.getSiteManager()
    search = sm.queryUtility(IURLSearch)
    urls = sm.queryUtility(IURLProvider)
    if search is None or urls is None or isinstance(
            search._hosts, gocept.lms.urlsearch.HostNames):
        return False
    urls._salt = gocept.lms.url.new_salt()
    urls._index = gocept.lms.url.URLIndex()
    urls._collisions = BTrees.OLBTree.OLBTree()
    for count, (key, url) in enumerate(urls._urls.items(), 1):
        urls._index_string(key, url)
        if not count % CHUNK:
            transaction.savepoint(True)
    hosts = gocept.lms.urlsearch.HostNames()
    hosts.update(search._hosts.keys())
    search._hosts = hosts
    log.info('%s: URL index keyed by host (%d URLs, %d hosts)',
             site.__name__, len(urls._index) + len(urls._collisions),
             len(hosts))
    return True
