"""Give every LMS site the schedule of URL checks.

Sites created before the schedule existed lack the utility; every URL they
hold is due at once, so the checker gets to all of them.
"""

import logging

import gocept.lms.generations
import gocept.lms.generations.evolve4
import gocept.lms.interfaces


log = logging.getLogger(__name__)


def evolve(context):
    for site in gocept.lms.generations.lms_sites(context):
        gocept.lms.generations.evolve4.upgrade_model(site)
        add_schedule(site)


def add_schedule(site):
    def fill(schedule, sm):
        urls = sm.queryUtility(gocept.lms.interfaces.IURLProvider)
        known = list(urls._urls.items()) if urls is not None else []
        schedule.add_new(known)
        log.info('%s: schedule added, %d URLs due', site.__name__,
                 len(known))
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.ISchedule, fill)
