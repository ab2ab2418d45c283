"""The documentation of each module, run as tests."""

import doctest
import unittest

import manuel.doctest
import manuel.footnote
import manuel.testing

import gocept.lms.tests


FLAGS = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE |
         doctest.REPORT_NDIFF)

FUNCTIONAL = [
    'sync.txt',
    'api.txt',
    'protocol.txt',
    'model.txt',
    'concurrency.txt',
    'schedule.txt',
    'merging.txt',
    'checker.txt',
    'journal.txt',
    'notify.txt',
    'metrics.txt',
    'mailqueue.txt',
    'urlsearch.txt',
    'clientfigures.txt',
    'syncwindow.txt',
]


def test_suite():
    suite = unittest.TestSuite()
    m = manuel.doctest.Manuel(optionflags=FLAGS) + manuel.footnote.Manuel()
    for name in FUNCTIONAL:
        layer = gocept.lms.tests.functional_layer
        test = manuel.testing.TestSuite(
            m, '../' + name,
            globs={'getRootFolder': layer.getRootFolder},
            tearDown=gocept.lms.tests.doctest_teardown)
        test.layer = layer
        suite.addTest(test)
    suite.addTest(manuel.testing.TestSuite(m, '../pgserver.txt'))
    suite.addTest(manuel.testing.TestSuite(m, '../db.txt'))
    return suite
