"""The tests leave nothing in the checkout.

The LMS keeps its files in the checkout's var/ by default (the checker's
figures, the secret key, the mail queue). The test configurations put each
of them into a temporary directory instead, both the one the tests run
with and the zope.conf they write for the processes they start; and the
functional layer fails when, after its tests, the checkout, its var/ or
its etc/ hold a file they did not hold before.
"""

import os
import re
import tempfile
import unittest
import unittest.mock

import zope.schema

import gocept.lms.tests
from gocept.lms.interfaces import ISettings
from gocept.lms.tests import processes


def checkout_defaults():
    """The settings whose default is a path in the checkout."""
    return sorted(
        name.replace('_', '-')
        for name, field in zope.schema.getFields(ISettings).items()
        if isinstance(field.default, str) and
        field.default.startswith('var/'))


def inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


class TestConfigurations(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def test_the_tests_own_configuration(self):
        self.assertEqual(['check-stats-file', 'mail-queue',
                          'secret-key-file'], checkout_defaults())
        for key in checkout_defaults():
            path = self.layer.config[key]
            self.assertTrue(inside(path, self.layer.tmp), (key, path))

    def test_the_configuration_of_started_processes(self):
        tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        # as test_e2e.py and concurrency.py write it
        conf = processes.write_zope_conf(tmp, processes.free_port(),
                                         processes.lms_settings(
                                             tmp, 8080, 25, 'secret'))
        with open(conf) as f:
            text = f.read()
        product_config = dict(
            re.findall(r'(?m)^  (\S+) ?(.*)$', text.split(
                '<product-config gocept.lms>')[1]))
        for key in checkout_defaults():
            value = product_config[key]
            if value:  # empty: not written at all
                self.assertTrue(inside(value, tmp), (key, value))
        self.assertEqual(os.path.join(tmp, 'checker-stats.json'),
                         product_config['check-stats-file'])

    def test_what_the_layer_compares(self):
        checkout = tempfile.mkdtemp(dir=self.layer.tmp)
        os.mkdir(os.path.join(checkout, 'var'))
        with unittest.mock.patch.object(processes, 'CHECKOUT', checkout):
            before = processes.checkout_files()
            for name in ['var/checker-stats.json', 'Data.fs']:
                with open(os.path.join(checkout, name), 'w'):
                    pass
            os.mkdir(os.path.join(checkout, 'etc'))
            with open(os.path.join(checkout, 'etc', 'admin.zcml'), 'w'):
                pass
            self.assertEqual(
                {'var/checker-stats.json', 'Data.fs', 'etc',
                 'etc/admin.zcml'},
                processes.checkout_files() - before)
