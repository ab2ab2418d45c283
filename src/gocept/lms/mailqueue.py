"""The mail queue: a maildir that only the LMS's user can read (a
registration mail carries the client's password), and the processor that
sends what it holds (bin/mailqueue, `mail.queue_processor`).

The processor is zope.sendmail's, patient with an SMTP server that is down
or turns mails away for now: each failed attempt is one line in the log,
without a traceback, and the more rounds over the queue fail in a row, the
longer it pauses between them, up to a limit.
"""

import atexit
import datetime
import logging
import os
import smtplib
import sys
import time

import zope.sendmail.queue

import gocept.lms.backoff
import gocept.lms.private


def private_maildir(path):
    """Create the maildir `path` for the owner only, or take group and
    other permissions away from an existing one; returns `path`."""
    for directory in (path, os.path.join(path, 'cur'),
                      os.path.join(path, 'new'), os.path.join(path, 'tmp')):
        gocept.lms.private.directory(directory)
        gocept.lms.private.restrict(directory)
    return path


# The queue processor's pause between two rounds over the queue, and the
# longest pause after failed rounds in a row (seconds).
INTERVAL = 3.0
MAX_INTERVAL = 300.0


def describe(error):
    """One line for an error of sending."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        return '%s %s' % (error.smtp_code, ' '.join(text.split()))
    return '%s: %s' % (type(error).__name__, error)


def server_unreachable(error):
    """Whether `error` says the SMTP server cannot take any mail now, as
    opposed to refusing this one."""
    if isinstance(error, (smtplib.SMTPConnectError, smtplib.SMTPHeloError)):
        return True
    return isinstance(error, OSError) and \
        not isinstance(error, smtplib.SMTPResponseException)


class AttemptLog(logging.LoggerAdapter):
    """The queue processor's log.

    zope.sendmail reports each failed attempt to send a mail through the
    `exception` method of its `log`. A server that is down, or that turns
    a mail away for now, is no bug: one line says so, without a traceback.
    Anything else keeps its traceback.
    """

    def __init__(self, processor):
        super().__init__(logging.getLogger(__name__), {})
        self.processor = processor

    def exception(self, msg, *args, exc_info=True, **kw):
        error = sys.exc_info()[1]
        self.processor.failed.append(error)
        # Every socket and every smtplib error is an OSError.
        if not isinstance(error, OSError):
            return super().exception(msg, *args, exc_info=exc_info, **kw)
        self.warning('%s: %s; %s', (msg % args).rstrip('.'), describe(error),
                     self.processor.retry_note())


class QueueProcessor(zope.sendmail.queue.QueueProcessorThread):
    """Sends the queued mails, round after round, `interval` seconds
    apart.

    After rounds in which an attempt failed it pauses longer: `interval`
    after the first, twice as long after each further one, at most
    `max_interval` seconds (`backoff.py`); a round without a failure
    brings the pause back to `interval`. When the server cannot be reached
    at all, the round ends at the first mail: the others would fail the
    same way. `sleep` is the function that pauses.
    """

    def __init__(self, interval=INTERVAL,
                 max_interval=MAX_INTERVAL, sleep=time.sleep):
        super().__init__(interval)
        self.max_interval = max(interval, max_interval)
        self.sleep = sleep
        self.failed_rounds = 0
        self.forever = True
        self.failed = []
        self.log = AttemptLog(self)

    def pause(self, failed_rounds):
        """Seconds to pause after `failed_rounds` failed rounds in a row."""
        if not failed_rounds:
            return float(self.interval)
        return gocept.lms.backoff.backoff(
            failed_rounds, datetime.timedelta(seconds=self.interval),
            datetime.timedelta(seconds=self.max_interval)).total_seconds()

    def retry_note(self):
        """What happens to a mail whose attempt failed in this round."""
        if not self.forever:
            return 'it stays queued'
        return 'next attempt in %g s' % self.pause(self.failed_rounds + 1)

    def attempt(self, filename):
        """Try to send the queued mail `filename`; the error if that
        failed."""
        failed = len(self.failed)
        # zope.sendmail's handling of one mail: it makes sure no other
        # processor sends it at the same time, and logs what fails.
        self._process_one_file(filename)
        if len(self.failed) == failed:
            return None
        # zope.sendmail marks the mail it sends with a link beside it,
        # and removes the mark when the mail is sent but not when sending
        # failed: the mark would keep every processor away from the mail
        # for three hours (its MAX_SEND_TIME). This attempt is over.
        head, tail = os.path.split(filename)
        try:
            os.unlink(os.path.join(head, '.sending-' + tail))
        except FileNotFoundError:
            pass
        return self.failed[-1]

    def send_round(self):
        """Try each queued mail once; the errors of the failed attempts."""
        self.failed = []
        for filename in self.maildir:
            if self._stopped:
                break
            error = self.attempt(filename)
            if error is not None and server_unreachable(error):
                break
        return self.failed

    def run(self, forever=True):
        """Send rounds until stopped (`forever`) or once; the errors of
        the last round."""
        # As zope.sendmail does: a mail being sent when the process is
        # told to exit is finished first.
        atexit.register(self.stop)
        self.forever = forever
        failed = []
        while not self._stopped:
            failed = self.send_round()
            self.failed_rounds = self.failed_rounds + 1 if failed else 0
            if not forever:
                break
            self.sleep(self.pause(self.failed_rounds))
        return failed
