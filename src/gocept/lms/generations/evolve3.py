"""Give every LMS site the per-state URL counters of the monitoring views.

From now on subscribers keep them up to date; for the URLs a site already
holds they are counted once here, which reads every URL record.
"""

import logging

import gocept.lms.generations
import gocept.lms.interfaces


log = logging.getLogger(__name__)


def evolve(context):
    gocept.lms.generations.each_site(
        context, add_state_counts, upgrade_model=True)


def add_state_counts(site):
    def fill(counts, sm):
        urls = sm.queryUtility(gocept.lms.interfaces.IURLProvider)
        if urls is not None:
            counts.recount(urls)
        log.info('%s: URL counts per state added: %s', site.__name__,
                 ', '.join('%s %d' % item
                           for item in counts.counts().items()))
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.IStateCounts, fill)
