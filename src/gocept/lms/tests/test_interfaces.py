"""The contracts (interfaces.py) say what the classes do."""

import unittest

import zope.interface.verify

import gocept.lms.app
import gocept.lms.client
from gocept.lms.interfaces import IClient, ILMS, IPendingChanges


class ContractsTest(unittest.TestCase):

    def test_the_site_names_each_of_its_utilities(self):
        for name, iface, factory in gocept.lms.app.UTILITIES:
            self.assertIn('`%s`' % iface.__name__, ILMS.__doc__, name)

    def test_a_client_keeps_the_contract_its_callers_use(self):
        client = gocept.lms.client.Client('fred')
        self.assertTrue(zope.interface.verify.verifyObject(IClient, client))
        # The notifier and the syncer call back with the password.
        self.assertIn('callback_password', IClient)
        self.assertIn('set_password', IClient)

    def test_pending_changes_keep_theirs(self):
        pending = gocept.lms.client.PendingChanges()
        self.assertTrue(
            zope.interface.verify.verifyObject(IPendingChanges, pending))
