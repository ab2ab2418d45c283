"""Give every LMS site the URL search index and the recent state changes.

From now on subscribers of the URL events keep both up to date; the index
is built here from the URLs a site holds (every URL string is read once,
with savepoints in between to bound the memory a million URLs take). The
ring of recent changes starts empty.
"""

import logging

import gocept.lms.generations
import gocept.lms.interfaces


log = logging.getLogger(__name__)


def evolve(context):
    gocept.lms.generations.each_site(context, add_search_index)


def add_search_index(site):
    def fill(index, sm):
        urls = sm.queryUtility(gocept.lms.interfaces.IURLProvider)
        count = index.build(urls) if urls is not None else 0
        log.info('%s: URL search index built (%d URLs), recent state '
                 'changes added', site.__name__, count)
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.IURLSearch, fill)
