"""The workers load workers.zcml, not etc/site.zcml: is it enough?

bin/checker (and its database process), bin/notifier and bin/sync load
the model's components without the ZMI (scripts.WORKERS_ZCML). A
subscriber registered for bin/web only would go unseen by them: a state
the checker writes would then miss the change journal, a URL the syncer
adds would miss the schedule. So these tests compare what each
configuration registers, each loaded in a fresh interpreter: everything
of gocept.lms that the running site registers, except what serves
requests, must be registered for the workers too.
"""

import ast
import functools
import os
import unittest

import gocept.lms.scripts
import gocept.lms.tests.processes


# Print every registration of the global registry that names gocept.lms,
# as a tuple of strings, one per line.
DUMP = '''
import sys, zope.app.appsetup.appsetup, zope.component
zope.app.appsetup.appsetup.config(sys.argv[1])
registry = zope.component.getGlobalSiteManager()

def named(spec):
    return getattr(spec, '__identifier__', None) or repr(spec)

def made_by(thing):
    thing = getattr(thing, 'factory', thing)
    return '%s.%s' % (getattr(thing, '__module__', '?'),
                      getattr(thing, '__name__', type(thing).__name__))

rows = set()
for r in registry.registeredUtilities():
    rows.add(('utility', named(r.provided), r.name, made_by(r.component)))
for r in registry.registeredAdapters():
    rows.add(('adapter', tuple(map(named, r.required)), named(r.provided),
              r.name, made_by(r.factory)))
for r in registry.registeredHandlers():
    rows.add(('handler', tuple(map(named, r.required)), made_by(r.handler)))
for r in registry.registeredSubscriptionAdapters():
    rows.add(('subscriber', tuple(map(named, r.required)),
              made_by(r.factory)))
for row in sorted(rows, key=repr):
    if 'gocept.lms' in repr(row):
        print(repr(row))
'''

# What only a process that serves requests needs: views and traversers
# (they are for a request), the publication's events, logins,
# permissions and roles, and the start-up that creates the site (a
# worker must never create it: app.py).
WEB = ('zope.publisher.', 'zope.traversing.interfaces.IBeforeTraverseEvent',
       'zope.authentication.', 'zope.security.interfaces.IPermission',
       'zope.securitypolicy.', 'zope.processlifetime.IDatabaseOpenedWithRoot')

# Every directive also registers the interfaces it names, as utilities
# providing IInterface; they follow the registrations compared here.
NAMED_INTERFACE = 'zope.interface.interfaces.IInterface'


@functools.cache
def registrations(zcml):
    result = gocept.lms.tests.processes.run_script(
        'py', '-c', 'import sys; sys.argv[1:] = [%r]\n%s' % (zcml, DUMP))
    if result.returncode:
        raise AssertionError(result.stderr)
    rows = {ast.literal_eval(line) for line in result.stdout.splitlines()}
    return {row for row in rows if row[1] != NAMED_INTERFACE}


def serves_requests(row):
    return any(name in repr(row) for name in WEB)


class WorkersZCMLTest(unittest.TestCase):

    def setUp(self):
        self.site = registrations(os.path.join(
            gocept.lms.tests.processes.CHECKOUT, 'etc', 'site.zcml'))
        self.workers = registrations(gocept.lms.scripts.WORKERS_ZCML)

    def test_the_workers_have_what_the_site_has_beyond_the_web(self):
        missing = {row for row in self.site - self.workers
                   if not serves_requests(row)}
        self.assertEqual(set(), missing,
                         'registered for bin/web only; put them in '
                         'model.zcml')

    def test_the_workers_have_nothing_of_the_web(self):
        self.assertEqual(
            set(), {row for row in self.workers if serves_requests(row)})

    def test_the_workers_have_nothing_the_site_lacks(self):
        self.assertEqual(set(), self.workers - self.site)

    def test_the_comparison_sees_the_model_and_the_web(self):
        # The model's subscribers are there on both sides, and the site
        # does have what the workers leave out: a broken dump would
        # make the tests above pass on two empty sets.
        journal = ('handler',
                   ('gocept.lms.interfaces.IURLStatesChangedEvent',),
                   'gocept.lms.journal.record_state_changes')
        self.assertIn(journal, self.site)
        self.assertIn(journal, self.workers)
        self.assertIn(('handler',
                       ('zope.processlifetime.IDatabaseOpenedWithRoot',),
                       'gocept.lms.app.bootstrap'), self.site)
