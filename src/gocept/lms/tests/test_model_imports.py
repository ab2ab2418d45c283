"""The model stands apart from the network side.

The site's model (the LMS class, its utilities and their subscribers) is
what every process loads; only the checker needs aiohttp and the check
engine. Each test imports a module in a fresh interpreter (bin/py), so that
what this test process imported before cannot hide an import.
"""

import pickle
import unittest

import gocept.lms.statecounts
import gocept.lms.tests.processes


NETWORK_SIDE = ('aiohttp', 'gocept.lms.checking.engine')


def imported_by(module):
    """The modules of NETWORK_SIDE (or their submodules) that importing
    `module` brings in."""
    code = (
        'import sys, %s\n'
        'names = %r\n'
        'print(sorted(m for m in sys.modules\n'
        '             if any(m == n or m.startswith(n + ".")'
        ' for n in names)))\n' % (module, NETWORK_SIDE))
    result = gocept.lms.tests.processes.run_script('py', '-c', code)
    if result.returncode:
        raise AssertionError(result.stderr)
    return result.stdout.strip()


class ModelImportsTest(unittest.TestCase):

    def test_the_site_model_imports_nothing_of_the_network_side(self):
        self.assertEqual('[]', imported_by('gocept.lms.app'))

    def test_the_settings_import_nothing_of_the_network_side(self):
        # Every process reads them, the checker's (checker-*) included.
        self.assertEqual('[]', imported_by('gocept.lms.settings'))

    def test_the_checkers_database_process_imports_nothing_of_it(self):
        # What that process imports: the scripts (open_database) and
        # checkerdb, whose `run` it calls; it unpickles policy.Results.
        self.assertEqual('[]', imported_by(
            'gocept.lms.scripts, gocept.lms.checkerdb, '
            'gocept.lms.checking.policy'))

    def test_the_probe_sees_the_network_side_where_it_is(self):
        # The checker's own module does import the engine: the probe
        # above would see it.
        self.assertIn('gocept.lms.checking.engine',
                      imported_by('gocept.lms.checker'))


class OldPicklesTest(unittest.TestCase):

    def test_the_state_counters_old_class_path_still_loads(self):
        # Sites created before the split store the class as
        # gocept.lms.metrics.StateCounts in their pickles.
        old_reference = b'cgocept.lms.metrics\nStateCounts\n.'
        self.assertIs(gocept.lms.statecounts.StateCounts,
                      pickle.loads(old_reference))
