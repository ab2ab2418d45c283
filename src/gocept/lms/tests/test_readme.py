"""README.txt's promises that a test can keep."""

import os
import re
import unittest

from gocept.lms.tests.processes import CHECKOUT


def read(*path):
    with open(os.path.join(CHECKOUT, *path)) as f:
        return f.read()


class ReadmeTest(unittest.TestCase):

    def commands(self):
        # The two commands are the indented lines after the quick-start
        # sentences.
        readme = read('README.txt')
        return re.findall(r'^    (python3 -m venv \. && .*)$', readme, re.M)

    def test_two_commands_set_up_and_run_the_lms_and_the_tests(self):
        run, test = self.commands()
        self.assertTrue(run.endswith('bin/lms'))
        self.assertTrue(test.endswith('bin/test'))
        self.assertEqual(run.rsplit('&&', 1)[0], test.rsplit('&&', 1)[0])

    def test_ci_runs_the_readme_test_command(self):
        run, test = self.commands()
        ci = [line for line in read('.ci', 'run').splitlines()
              if line and not line.startswith('#')]
        self.assertIn(test, ci)

    def test_every_console_script_is_documented(self):
        setup = read('setup.py')
        readme = read('README.txt')
        scripts = re.findall(r"'([a-z-]+) = gocept\.lms\.", setup)
        self.assertIn('sync', scripts)
        for name in scripts:
            self.assertIn('bin/%s' % name, readme, name)
