"""The mails to client contacts, sent through zope.sendmail.

Mails are transactional: they leave only when the transaction that caused
them commits, so a refused registration sends nothing. The delivery is the
`IMailDelivery` utility named `gocept.lms` when the site configuration (or
a test) registers one; otherwise it is built from the settings: a maildir
queue (`mail-queue`) that the queue processor empties towards
`smtp-host`/`smtp-port`, or, with an empty `mail-queue`, direct SMTP at
commit time.

The texts live in mailtemplates/, as `string.Template` files whose first
line is the subject.

The queue and its processor (bin/mailqueue): mailqueue.py.
"""

import email.message
import functools
import smtplib
import email.utils
import os.path
import re
import string
import time

import zope.component
import zope.sendmail.delivery
import zope.sendmail.interfaces
import zope.sendmail.mailer

import gocept.lms.clock
import gocept.lms.mailqueue
import gocept.lms.settings


TEMPLATES = os.path.join(os.path.dirname(__file__), 'mailtemplates')

_deliveries = {}


def delivery():
    registered = zope.component.queryUtility(
        zope.sendmail.interfaces.IMailDelivery, name='gocept.lms')
    if registered is not None:
        return registered
    settings = gocept.lms.settings.get()
    key = (settings.mail_queue, settings.smtp_host, settings.smtp_port)
    if key not in _deliveries:
        if settings.mail_queue:
            _deliveries[key] = zope.sendmail.delivery.QueuedMailDelivery(
                gocept.lms.mailqueue.private_maildir(settings.mail_queue))
        else:
            _deliveries[key] = zope.sendmail.delivery.DirectMailDelivery(
                mailer())
    return _deliveries[key]


def mailer():
    settings = gocept.lms.settings.get()
    result = zope.sendmail.mailer.SMTPMailer(
        settings.smtp_host, settings.smtp_port)
    if settings.smtp_helo_name:
        # Without it smtplib greets with socket.getfqdn(), a DNS lookup.
        result.smtp = functools.partial(
            smtplib.SMTP, local_hostname=settings.smtp_helo_name)
    return result


def queue_processor(interval=gocept.lms.mailqueue.INTERVAL, mailer=None,
                    max_interval=gocept.lms.mailqueue.MAX_INTERVAL,
                    sleep=time.sleep):
    """A thread that sends what the queue holds (start() it, or run() it
    in the foreground; stop() ends it)."""
    settings = gocept.lms.settings.get()
    thread = gocept.lms.mailqueue.QueueProcessor(
        interval, max_interval, sleep)
    thread.setMailer(mailer or globals()['mailer']())
    thread.setQueuePath(
        gocept.lms.mailqueue.private_maildir(settings.mail_queue))
    return thread


def copy_to():
    return [address for address in
            re.split(r'[\s,;]+', gocept.lms.settings.get().mail_copy_to)
            if address]


def render(template, **values):
    """(subject, body) of a template filled with `values`."""
    settings = gocept.lms.settings.get()
    values.setdefault('lms_name', settings.lms_name)
    values.setdefault('public_url', settings.public_url)
    with open(os.path.join(TEMPLATES, template + '.txt'),
              encoding='utf-8') as f:
        subject, body = f.read().split('\n', 1)
    return (string.Template(subject).substitute(values).strip(),
            string.Template(body).substitute(values).lstrip('\n'))


def send(template, client, **values):
    """Mail the client's contact (and the copy list); return the
    Message-Id."""
    settings = gocept.lms.settings.get()
    subject, body = render(
        template, client_id=client.id, callback=client.callback or '',
        contact_name=client.contact_name or '',
        contact_email=client.contact_email or '', **values)
    message = email.message.EmailMessage()
    message['From'] = email.utils.formataddr(
        (settings.lms_name, settings.mail_sender))
    message['To'] = email.utils.formataddr(
        (client.contact_name or '', client.contact_email))
    message['Subject'] = subject
    message['Date'] = email.utils.formatdate(localtime=False)
    message['Message-Id'] = email.utils.make_msgid(domain='gocept.lms')
    message.set_content(body)
    # The copy list gets the mail as blind copy: the contact does not
    # need to see the LMS operators' addresses.
    recipients = [client.contact_email] + [
        address for address in copy_to() if address != client.contact_email]
    # SMTP wants CRLF, and smtplib passes bytes on unchanged.
    data = message.as_bytes(policy=message.policy.clone(linesep='\r\n'))
    return delivery().send(settings.mail_sender, recipients, data)


def send_registration(client, password):
    return send('registered', client, password=password)


def send_removal(client):
    return send('removed', client)


# What a mail says for a moment the LMS did not record.
NOT_RECORDED = 'time not recorded'


def send_notifications_disabled(client, failures, since, switched_off):
    when = gocept.lms.clock.when
    return send('notifications-disabled', client, failures=failures,
                since=when(since, NOT_RECORDED),
                switched_off=when(switched_off, NOT_RECORDED))


def send_notifications_reenabled(client, disabled_at, switched_on):
    when = gocept.lms.clock.when
    return send('notifications-reenabled', client,
                disabled_at=when(disabled_at, NOT_RECORDED),
                switched_on=when(switched_on, NOT_RECORDED))
