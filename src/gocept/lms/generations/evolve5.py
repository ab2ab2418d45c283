"""Give every LMS site the change journal (journal.py).

From now on the checker notes state changes in the journal and the
notifier hands them to the clients' pending maps. What the pending maps
hold already stays there and is pushed as before.
"""

import logging

import gocept.lms.generations
import gocept.lms.interfaces


log = logging.getLogger(__name__)


def evolve(context):
    gocept.lms.generations.each_site(context, add_journal)


def add_journal(site):
    def fill(journal, sm):
        log.info('%s: change journal added', site.__name__)
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.IChangeJournal, fill)
