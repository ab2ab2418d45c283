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
import functools
import smtplib
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
    result = zope.sendmail.mailer.SMTPMailer(
        settings.smtp_host, settings.smtp_port)
    if settings.smtp_helo_name:
        # Without it smtplib greets with socket.getfqdn(), a DNS lookup.
        result.smtp = functools.partial(
            smtplib.SMTP, local_hostname=settings.smtp_helo_name)
    return result


def queue_processor(interval=3.0, mailer=None):
    """A thread that sends what the queue holds (start() it, or run() it
    in the foreground; stop() ends it)."""
    settings = gocept.lms.settings.get()
    thread = zope.sendmail.queue.QueueProcessorThread(interval)
    thread.setMailer(mailer or globals()['mailer']())
    thread.setQueuePath(settings.mail_queue)
    return thread


def queue_main(argv=None):
    """Console entry point: send queued mails until stopped.

    Reads only the product configuration and logging of etc/zope.conf; it
    needs neither the database nor the ZCML.
    """
    import argparse
    import ZConfig
    import zope.app.appsetup
    import zope.app.appsetup.product
    parser = argparse.ArgumentParser(
        prog='mailqueue',
        description='Send the mails the LMS queued (mail-queue) to the '
                    'SMTP server (smtp-host, smtp-port).')
    parser.add_argument('-C', '--config', default='etc/zope.conf')
    parser.add_argument('--once', action='store_true',
                        help='send what is queued now, then exit')
    args = parser.parse_args(argv)
    schema = ZConfig.loadSchema(os.path.join(
        os.path.dirname(zope.app.appsetup.__file__), 'schema', 'schema.xml'))
    options, handlers = ZConfig.loadConfig(schema, args.config)
    zope.app.appsetup.product.setProductConfigurations(
        options.product_config)
    options.eventlog()
    if not gocept.lms.settings.get().mail_queue:
        parser.error('mail-queue is empty in %s: mails are sent directly, '
                     'there is no queue to process' % args.config)
    queue_processor().run(forever=not args.once)


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
