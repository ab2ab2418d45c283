"""Give every LMS site the copy of its clients' monitoring figures
(clientfigures.py), filled from each client's notification and sync
state. From now on the annotations keep it up to date themselves."""

import logging

import gocept.lms.clientfigures
import gocept.lms.generations
import gocept.lms.interfaces
from gocept.lms.interfaces import INotifications, ISynchronization


log = logging.getLogger(__name__)


def evolve(context):
    gocept.lms.generations.each_site(context, add_client_figures)


def add_client_figures(site):
    def fill(figures, sm):
        clients = sm.queryUtility(gocept.lms.interfaces.IClientProvider)
        count = 0
        for client in (clients.values() if clients is not None else ()):
            gocept.lms.clientfigures.note(
                INotifications(client), gocept.lms.clientfigures.NOTIFY)
            gocept.lms.clientfigures.note(
                ISynchronization(client), gocept.lms.clientfigures.SYNC)
            count += 1
        log.info('%s: monitoring figures of %d clients copied',
                 site.__name__, count)
    return gocept.lms.generations.add_utility(
        site, gocept.lms.interfaces.IClientFigures, fill)
