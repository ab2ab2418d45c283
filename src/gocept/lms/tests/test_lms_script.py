"""bin/lms: supervisord with the LMS's own etc/supervisord.conf, in a
checkout of its own in a temporary directory that runs only the ZEO
server (on a free port of 127.0.0.1), so that the test does not depend on
the other processes and does not disturb a local LMS."""

import os
import re
import stat
import subprocess
import tempfile
import unittest

import gocept.lms.tests
from gocept.lms.tests import processes


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class LMSScriptTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.checkout = tempfile.mkdtemp(dir=self.layer.tmp)
        os.symlink(processes.BIN, self.path('bin'))
        os.mkdir(self.path('etc'))
        with open(os.path.join(processes.CHECKOUT, 'etc',
                               'supervisord.conf')) as f:
            sections = re.split(r'(?m)^(?=\[)', f.read())
        with open(self.path('etc', 'supervisord.conf'), 'w') as f:
            f.write(''.join(
                section for section in sections
                if not section.startswith('[program:') or
                section.startswith('[program:zeo]')))
        self.zeo_port = processes.free_port()
        with open(os.path.join(processes.CHECKOUT, 'etc', 'zeo.conf')) as f:
            zeo_conf = f.read()
        with open(self.path('etc', 'zeo.conf'), 'w') as f:
            f.write(zeo_conf.replace('127.0.0.1:8100',
                                     '127.0.0.1:%d' % self.zeo_port))

    def path(self, *names):
        return os.path.join(self.checkout, *names)

    def lms(self, *args, **kw):
        """bin/lms in the checkout, under the umask most shells have."""
        return subprocess.run(
            [self.path('bin', 'lms')] + list(args), cwd=self.checkout,
            umask=0o022, capture_output=True, text=True, timeout=60, **kw)

    def start(self):
        log = open(self.path('lms.out'), 'w+')
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [self.path('bin', 'lms')], cwd=self.checkout, umask=0o022,
            stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, process)
        processes.wait_for_port('127.0.0.1', self.zeo_port, timeout=60)
        return process

    def stop(self, process):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def test_not_running(self):
        result = self.lms('status')
        self.assertEqual(
            (1, 'lms: the LMS is not running; bin/lms starts it\n'),
            (result.returncode, result.stderr))

    def test_an_existing_var_and_admin_login_are_made_private(self):
        # as an earlier bin/lms left them
        os.mkdir(self.path('var'), 0o755)
        with open(self.path('etc', 'admin.zcml'), 'w') as f:
            f.write('<configure />\n')
        os.chmod(self.path('etc', 'admin.zcml'), 0o644)
        self.lms('status')
        self.assertEqual(0o700, mode(self.path('var')))
        self.assertEqual(0o600, mode(self.path('etc', 'admin.zcml')))

    def test_start_control_and_stop(self):
        process = self.start()

        # A second bin/lms does not start another supervisord.
        result = self.lms()
        self.assertEqual(
            (1, 'lms: the LMS is already running (pid %d); bin/lms status '
                'shows it\n' % process.pid),
            (result.returncode, result.stderr))

        # supervisorctl, with the password of the socket
        result = self.lms('status')
        self.assertRegex(result.stdout, r'^zeo +(STARTING|RUNNING) ')

        # What the first start wrote, and the ZEO server's database, are
        # for this user only, whatever the umask bin/lms was started with.
        for name in ['var', 'var/log']:
            self.assertEqual(0o700, mode(self.path(name)), name)
        self.assertEqual(0o700, mode(self.path('var', 'supervisord.sock')))
        for name in ['etc/admin.zcml', 'var/initial-admin-password',
                     'var/admin-secret', 'var/supervisor-secret',
                     'var/Data.fs', 'var/log/zeo.log',
                     'var/log/supervisord.log']:
            self.assertEqual(0o600, mode(self.path(name)), name)

        result = self.lms('shutdown')
        self.assertEqual(0, result.returncode, result.stdout)
        self.assertEqual(0, process.wait(60))
        self.assertEqual(0o600, mode(self.path('var', 'Data.fs.index')))

        # Its socket needs a password, so supervisord has no reason to
        # warn about it.
        with open(self.path('var', 'log', 'supervisord.log')) as f:
            log = f.read()
        self.assertIn('supervisord started', log)
        self.assertNotIn('without any HTTP authentication', log)
