"""Files that hold secrets, and their directories, are for the LMS's user
only, whatever the umask of the process that creates them."""

import os
import stat
import tempfile
import unittest

import transaction

import gocept.lms.mail
import gocept.lms.private
import gocept.lms.scripts
import gocept.lms.secrets
import gocept.lms.tests


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class FileModes(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)
        # the umask most shells have
        self.addCleanup(os.umask, os.umask(0o022))

    def tearDown(self):
        gocept.lms.tests.restore_configuration()

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def test_first_start_writes_the_admin_login_and_secrets(self):
        os.mkdir(self.path('etc'))
        os.mkdir(self.path('var'))
        password = gocept.lms.scripts.ensure_admin(
            self.path('etc'), self.path('var'))
        self.assertTrue(password)
        secret = gocept.lms.scripts.ensure_admin_secret(
            self.path('var', 'admin-secret'))
        self.assertTrue(secret)
        for name in ['etc/admin.zcml', 'var/initial-admin-password',
                     'var/admin-secret']:
            self.assertEqual(0o600, mode(self.path(name)), name)
        # Written once: a second start keeps them.
        self.assertIsNone(gocept.lms.scripts.ensure_admin(
            self.path('etc'), self.path('var')))
        self.assertIsNone(gocept.lms.scripts.ensure_admin_secret(
            self.path('var', 'admin-secret')))
        self.assertEqual(
            (secret, False),
            gocept.lms.scripts.ensure_secret(self.path('var', 'admin-secret')))

    def test_a_replaced_file_loses_the_mode_it_had(self):
        path = self.path('initial-admin-password')
        with open(path, 'w') as f:
            f.write('admin old\n')
        self.assertEqual(0o644, mode(path))
        gocept.lms.private.write(path, 'admin new\n', replace=True)
        self.assertEqual(0o600, mode(path))
        with self.assertRaises(FileExistsError):
            gocept.lms.private.write(path, 'admin newer\n')

    def test_restrict_takes_away_group_and_other_permissions(self):
        path = self.path('admin.zcml')
        with open(path, 'w') as f:
            f.write('<configure />\n')
        os.chmod(path, 0o664)
        self.assertTrue(gocept.lms.private.restrict(path))
        self.assertEqual(0o600, mode(path))
        self.assertFalse(gocept.lms.private.restrict(path))
        self.assertFalse(gocept.lms.private.restrict(self.path('missing')))

    def test_the_key_that_seals_passwords_and_its_directory(self):
        key = self.path('keys', 'secret.key')
        gocept.lms.secrets._fernets.pop(key, None)
        sealed = gocept.lms.secrets.seal('pw', key)
        self.assertEqual('pw', gocept.lms.secrets.unseal(sealed, key))
        self.assertEqual(0o700, mode(self.path('keys')))
        self.assertEqual(0o600, mode(key))

    def test_the_mail_queue_and_its_mails(self):
        queue = self.path('var', 'mailqueue')
        gocept.lms.tests.configure(mail_queue=queue)
        gocept.lms.mail.delivery().send(
            'lms@localhost', ['fred@example.com'],
            b'Subject: Your password\r\n\r\nPassword: secret\r\n')
        transaction.commit()
        for name in ['', 'cur', 'new', 'tmp']:
            self.assertEqual(0o700, mode(os.path.join(queue, name)), name)
        [mail] = os.listdir(os.path.join(queue, 'new'))
        self.assertEqual(0o600, mode(os.path.join(queue, 'new', mail)))
