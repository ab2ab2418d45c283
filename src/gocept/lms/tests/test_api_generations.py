"""Generation 1: plaintext client passwords of 3.x become hashes."""

import unittest

import transaction
import zope.component
import zope.component.hooks
import zope.generations.generations

import gocept.lms.client
import gocept.lms.generations
import gocept.lms.interfaces
import gocept.lms.tests


class Evolve1Test(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_plaintext_password_is_replaced_by_hash_and_sealed_copy(self):
        root = self.layer.getRootFolder()
        zope.component.hooks.setSite(root['lms'])
        clients = zope.component.getUtility(
            gocept.lms.interfaces.IClientProvider)
        old = gocept.lms.client.Client('old')
        # How a 3.x client's state looks after loading.
        old.__dict__['password'] = 'plain-secret'
        clients.add(old)
        clients.add(gocept.lms.client.Client('new'))
        clients['new'].set_password('new-secret', gocept.lms.tests.key_file())
        connection = root._p_jar
        connection.root()['zope.generations']['gocept.lms'] = 0
        transaction.commit()

        zope.generations.generations.evolve(self.layer.db)

        transaction.begin()
        old = clients['old']
        self.assertNotIn('password', old.__dict__)
        self.assertNotIn('plain-secret', repr(old.__getstate__()))
        self.assertTrue(old.check_password('plain-secret'))
        self.assertFalse(old.check_password('other'))
        self.assertEqual(
            'plain-secret',
            old.callback_password(gocept.lms.tests.key_file()))
        self.assertTrue(clients['new'].check_password('new-secret'))
        self.assertEqual(
            gocept.lms.generations.manager.generation,
            connection.root()['zope.generations']['gocept.lms'])
