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
"""

import email.message
import email.utils
import os.path
import re
import string

import zope.component
import zope.sendmail.delivery
import zope.sendmail.interfaces
import zope.sendmail.mailer
import zope.sendmail.queue

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
                settings.mail_queue)
        else:
            _deliveries[key] = zope.sendmail.delivery.DirectMailDelivery(
                mailer())
    return _deliveries[key]


def mailer():
    settings = gocept.lms.settings.get()
    return zope.sendmail.mailer.SMTPMailer(
        settings.smtp_host, settings.smtp_port)


def queue_processor():
    """A thread that sends what the queue holds (start it, stop() it).

    For a process of its own, zope.sendmail's `zope-sendmail` script does
    the same from the command line.
    """
    settings = gocept.lms.settings.get()
    thread = zope.sendmail.queue.QueueProcessorThread()
    thread.setMailer(mailer())
    thread.setQueuePath(settings.mail_queue)
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


def send_notifications_disabled(client, failures):
    return send('notifications-disabled', client, failures=failures)
