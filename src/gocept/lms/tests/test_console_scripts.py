"""The console scripts as an operator meets them: each explains itself with
-h, and one that cannot do its work says why in one line on stderr, with
the exit status README.txt documents. Real scripts, run as subprocesses
against closed ports on 127.0.0.1."""

import os
import re
import tempfile
import unittest

import zope.sendmail.maildir

import gocept.lms.tests
from gocept.lms.tests import processes


def local_conf(directory, zeo_port, **settings):
    """etc/zope.conf as the checkout has it, with the ZEO server at
    `zeo_port`, the files of var/ in `directory` and `settings` (dashes)
    replaced."""
    with open(os.path.join(processes.CHECKOUT, 'etc', 'zope.conf')) as f:
        text = f.read()
    text = re.sub(r'server 127\.0\.0\.1:\d+', 'server 127.0.0.1:%d' % zeo_port,
                  text)
    text = re.sub(r' var/', ' %s/' % directory, text)
    for key, value in dict(processes.file_settings(directory),
                           **settings).items():
        line = '  %s %s' % (key, value)
        text, found = re.subn(r'(?m)^\s*%s .*$' % re.escape(key),
                              lambda match: line, text)
        if not found:
            text = text.replace('</product-config>',
                                line + '\n</product-config>')
    path = os.path.join(directory, 'zope.conf')
    with open(path, 'w') as f:
        f.write(text)
    return path


class ConsoleScriptTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.layer.tmp)

    def run_script(self, name, *args):
        return processes.run_script(name, *args)

    def assertOneLine(self, result, status, line):
        self.assertEqual(
            (status, [line]), (result.returncode, result.stderr.splitlines()),
            result.stderr)


class Help(ConsoleScriptTest):

    def test_each_script_explains_itself_and_its_exit_status(self):
        for name in ['sync', 'web', 'checker', 'notifier', 'mailqueue',
                     'lms-demo', 'lms']:
            result = self.run_script(name, '-h')
            self.assertEqual((0, ''), (result.returncode, result.stderr),
                             name)
            self.assertTrue(result.stdout.startswith('usage: %s ' % name),
                            result.stdout)
            self.assertIn('exit status', result.stdout.lower(), name)

    def test_lms_tells_how_to_control_a_running_lms(self):
        result = self.run_script('lms', '-h')
        for action in ['status', 'restart NAME', 'tail -f NAME',
                       'shutdown']:
            self.assertIn('\n  %s ' % action, result.stdout)
        # supervisorctl's own help (an interactive shell without an
        # action) is not what bin/lms does.
        self.assertNotIn('interactive', result.stdout)
        self.assertNotIn('supervisorctl -c', result.stdout)

    def test_database_scripts_take_a_connect_timeout(self):
        for name in ['sync', 'web', 'checker', 'notifier']:
            result = self.run_script(name, '-h')
            self.assertIn('--connect-timeout SECONDS', result.stdout, name)


class ZEOServerDown(ConsoleScriptTest):

    def test_scripts_say_which_server_they_waited_for_and_how_long(self):
        port = processes.free_port()  # nobody listens there
        conf = local_conf(self.tmp, port)
        for name in ['sync', 'web', 'checker', 'notifier']:
            result = self.run_script(name, '-C', conf,
                                     '--connect-timeout', '1')
            self.assertOneLine(
                result, 2, '%s: cannot reach the database (ZEO server at '
                '127.0.0.1:%d) after 1 s' % (name, port))

    def test_the_configured_wait_timeout_is_the_default(self):
        port = processes.free_port()
        conf = local_conf(self.tmp, port)
        with open(conf) as f:
            text = f.read()
        self.assertIn('wait-timeout 30', text)
        with open(conf, 'w') as f:
            f.write(text.replace('wait-timeout 30', 'wait-timeout 1'))
        result = self.run_script('sync', '-C', conf)
        self.assertOneLine(
            result, 2,
            'sync: cannot reach the database (ZEO server at 127.0.0.1:%d) '
            'after 1 s' % port)

    def test_the_timeout_must_be_positive(self):
        result = self.run_script('sync', '--connect-timeout', '0')
        self.assertEqual(2, result.returncode)
        self.assertIn('not a positive number: 0', result.stderr)


class PostgreSQLDown(ConsoleScriptTest):

    def test_scripts_say_which_server_they_waited_for_and_why(self):
        import gocept.lms.pgserver
        port = processes.free_port()  # nobody listens there
        database = gocept.lms.pgserver.PostgreSQL(
            os.path.join(self.tmp, 'postgresql'), port)
        conf = processes.write_zope_conf(self.tmp, database, {})
        for name in ['sync', 'checker']:
            result = self.run_script(name, '-C', conf,
                                     '--connect-timeout', '1')
            self.assertEqual(2, result.returncode, result.stderr)
            # RelStorage's own warnings about each refused connection are
            # in the log before it.
            self.assertEqual(
                '%s: cannot reach the database (PostgreSQL at '
                'host=127.0.0.1 port=%d dbname=lms) after 1 s: connection '
                'to server at "127.0.0.1", port %d failed: Connection '
                'refused' % (name, port, port),
                result.stderr.splitlines()[-1])


class BadConfiguration(ConsoleScriptTest):

    def test_unknown_setting(self):
        conf = local_conf(self.tmp, processes.free_port())
        with open(conf) as f:
            text = f.read()
        with open(conf, 'w') as f:
            f.write(text.replace('</product-config>',
                                 '  sink-interval 3\n</product-config>'))
        for name in ['sync', 'notifier']:
            result = self.run_script(name, '-C', conf)
            self.assertOneLine(
                result, 2, '%s: cannot open the database: Unknown '
                'gocept.lms settings: sink-interval' % name)
        result = self.run_script('mailqueue', '-C', conf)
        self.assertOneLine(
            result, 2, 'mailqueue: cannot read the configuration: Unknown '
            'gocept.lms settings: sink-interval')

    def test_missing_configuration(self):
        missing = os.path.join(self.tmp, 'missing.conf')
        for name in ['mailqueue', 'lms-demo', 'web']:
            result = self.run_script(name, '-C', missing)
            self.assertEqual(2, result.returncode, name)
            lines = result.stderr.splitlines()
            self.assertEqual(1, len(lines), result.stderr)
            self.assertIn(missing, lines[0])

    def test_mailqueue_without_a_queue(self):
        conf = local_conf(self.tmp, processes.free_port(),
                          **{'mail-queue': ''})
        result = self.run_script('mailqueue', '-C', conf)
        self.assertOneLine(
            result, 2, 'mailqueue: mail-queue is empty in %s: mails are '
            'sent directly, there is no queue to process' % conf)


class DemoWithoutLMS(ConsoleScriptTest):

    def test_no_lms_listens(self):
        port = processes.free_port()
        url = 'http://127.0.0.1:%d/lms/' % port
        conf = local_conf(self.tmp, processes.free_port(),
                          **{'public-url': url})
        with open(os.path.join(self.tmp, 'admin-secret'), 'w') as f:
            f.write('secret\n')
        result = self.run_script('lms-demo', '-C', conf)
        self.assertOneLine(
            result, 2, 'lms-demo: cannot reach the LMS at %s: [Errno 111] '
            'Connection refused; is bin/lms running (bin/lms status)?' % url)

    def test_no_admin_secret_yet(self):
        conf = local_conf(self.tmp, processes.free_port())
        result = self.run_script('lms-demo', '-C', conf)
        self.assertOneLine(
            result, 2, "lms-demo: cannot read the admin secret "
            "(admin-secret-file): [Errno 2] No such file or directory: "
            "'%s/admin-secret'; bin/lms writes it on first start" % self.tmp)


class MailQueueWithoutSMTPServer(ConsoleScriptTest):

    def test_once_logs_one_line_per_attempt_and_keeps_the_mail(self):
        port = processes.free_port()  # no SMTP server there
        conf = local_conf(self.tmp, processes.free_port(), **{
            'smtp-host': '127.0.0.1', 'smtp-port': port,
            'smtp-helo-name': 'localhost'})
        queue = os.path.join(self.tmp, 'mailqueue')
        writer = zope.sendmail.maildir.Maildir(queue, True).newMessage()
        writer.write(b'X-Zope-From: lms@localhost\n'
                     b'X-Zope-To: fred@example.com\n'
                     b'Subject: Hello\r\n\r\nHello.\r\n')
        writer.commit()
        queued = os.listdir(os.path.join(queue, 'new'))

        result = self.run_script('mailqueue', '-C', conf, '--once')
        self.assertEqual(1, result.returncode, result.stderr)
        lines = result.stderr.splitlines()
        self.assertEqual(1, len(lines), result.stderr)
        self.assertIn(' WARNING gocept.lms.mailqueue Error while sending '
                      'mail from lms@localhost to fred@example.com', lines[0])
        self.assertTrue(lines[0].endswith(
            ': ConnectionRefusedError: [Errno 111] Connection refused; '
            'it stays queued'), lines[0])
        self.assertEqual(queued, os.listdir(os.path.join(queue, 'new')))

        # The next attempt is made (and fails) again at once.
        result = self.run_script('mailqueue', '-C', conf, '--once')
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
