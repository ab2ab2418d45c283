"""Give every LMS site the schedule of URL checks.

Sites created before the schedule existed lack the utility; every URL they
hold is due at once, so the checker gets to all of them.
"""

import logging

import gocept.lms.generations
import gocept.lms.interfaces


log = logging.getLogger(__name__)


def evolve(context):
    gocept.lms.generations.each_site(context, add_schedule, upgrade_model=True)


def add_schedule(site):
    def fill(schedule, sm):
        urls = sm.queryUtility(gocept.lms.interfaces.IURLProvider)
        known = list(urls._urls.items()) if urls is not None else []
        schedule.add_new(known)
        log.info('%s: schedule added, %d URLs due', site.__name__,
                 len(known))
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.ISchedule, fill)
