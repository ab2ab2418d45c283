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

    def layout(self):
        readme = read('README.txt')
        start = readme.index('``src/gocept/lms/``\n')
        return readme[start:readme.index('``benchmarks/``\n', start)]

    def test_the_layout_names_what_is_in_the_package(self):
        package = os.path.join(CHECKOUT, 'src', 'gocept', 'lms')
        layout = self.layout()
        for folder in ('', 'checking', 'scripts'):
            for name in sorted(os.listdir(os.path.join(package, folder))):
                path = os.path.join(folder, name)
                if name in ('__pycache__', 'tests') and folder:
                    continue
                if name == '__pycache__' or name.endswith('.pyc') or (
                        name == '__init__.py' and folder != 'scripts'):
                    continue
                if os.path.isdir(os.path.join(package, path)):
                    path += '/'
                self.assertIn('``%s``' % path, layout, path)

    def test_what_the_layout_names_is_there(self):
        package = os.path.join(CHECKOUT, 'src', 'gocept', 'lms')
        named = re.findall(r'``([^`]+)``', self.layout())
        paths = [name for name in named
                 if re.search(r'(\.py|\.txt|\.zcml|/)$', name)
                 and '*' not in name and not name.startswith(('bin/', 'src/'))]
        self.assertIn('checking/engine.py', paths)
        for path in paths:
            self.assertTrue(os.path.exists(os.path.join(package, path)), path)

