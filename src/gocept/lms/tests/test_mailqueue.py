"""Edge cases of the mail queue processor (mailqueue.txt tells the main
story): a server that turns one mail away for now, and errors that are
not the server's."""

import os
import shutil
import tempfile
import unittest

import zope.sendmail.maildir
import zope.sendmail.mailer

import gocept.lms.mailqueue
from gocept.lms.tests.servers import LOOPBACK, LoopbackSMTP, SMTPSink


class BusySink(SMTPSink):
    """Takes every mail but those to busy@example.com, which it turns
    away for now (451) after their data."""

    async def handle_DATA(self, server, session, envelope):
        if 'busy@example.com' in envelope.rcpt_tos:
            return '451 4.2.0 Mailbox busy, try again later'
        return await super().handle_DATA(server, session, envelope)


class QueueProcessorTest(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        self.queue = os.path.join(tmp, 'mailqueue')
        self.maildir = zope.sendmail.maildir.Maildir(self.queue, True)
        self.pauses = []
        self.processor = gocept.lms.mailqueue.QueueProcessor(
            interval=1, max_interval=4, sleep=self.pauses.append)
        self.processor.setQueuePath(self.queue)

    def queue_mail(self, to):
        writer = self.maildir.newMessage()
        writer.write(b'X-Zope-From: lms@localhost\nX-Zope-To: %s\n'
                     b'Subject: Hello\r\n\r\nHello.\r\n' % to.encode())
        writer.commit()

    def queued(self):
        return sorted(os.listdir(os.path.join(self.queue, 'new')))

    def use(self, port):
        mailer = zope.sendmail.mailer.SMTPMailer(LOOPBACK, port)
        mailer.smtp = LoopbackSMTP
        self.processor.setMailer(mailer)

    def test_a_mail_turned_away_for_now_does_not_stop_the_others(self):
        sink = BusySink().start()
        self.addCleanup(sink.stop)
        self.use(sink.port)
        self.queue_mail('busy@example.com')
        self.queue_mail('fred@example.com')
        with self.assertLogs('gocept.lms.mailqueue') as logged:
            failed = self.processor.run(forever=False)
        self.assertEqual(1, len(failed))
        self.assertEqual(['fred@example.com'],
                         [to for _, [to], _ in sink.messages])
        [warning] = [r for r in logged.records if r.levelname == 'WARNING']
        self.assertIsNone(warning.exc_info)
        self.assertIn('to busy@example.com', warning.getMessage())
        self.assertTrue(warning.getMessage().endswith(
            ': 451 4.2.0 Mailbox busy, try again later; it stays queued'),
            warning.getMessage())
        self.assertEqual(1, len(self.queued()))

    def test_errors_that_are_not_the_servers_keep_their_traceback(self):
        class Broken:
            def send(self, fromaddr, toaddrs, message):
                raise KeyError('a bug')
        self.processor.setMailer(Broken())
        self.queue_mail('fred@example.com')
        with self.assertLogs('gocept.lms.mailqueue') as logged:
            failed = self.processor.run(forever=False)
        [error] = logged.records
        self.assertEqual('ERROR', error.levelname)
        self.assertIs(failed[0], error.exc_info[1])
        # It is tried again (not kept away by zope.sendmail's mark).
        with self.assertLogs('gocept.lms.mailqueue'):
            self.assertEqual(1, len(self.processor.run(forever=False)))

    def test_the_pause_grows_to_the_limit_and_falls_back(self):
        p = self.processor
        self.assertEqual([1, 1, 2, 4, 4],
                         [p.pause(rounds) for rounds in range(5)])

    def test_only_a_server_that_cannot_be_reached_ends_the_round(self):
        import smtplib
        unreachable = gocept.lms.mailqueue.server_unreachable
        self.assertTrue(unreachable(ConnectionRefusedError(111, 'refused')))
        self.assertTrue(unreachable(smtplib.SMTPServerDisconnected('gone')))
        self.assertTrue(unreachable(smtplib.SMTPConnectError(421, b'busy')))
        self.assertFalse(unreachable(smtplib.SMTPDataError(451, b'later')))
        self.assertFalse(unreachable(KeyError('a bug')))
