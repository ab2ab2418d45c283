"""bin/mailqueue: send the mails the LMS queued."""

import argparse
import sys

import gocept.lms.mail
import gocept.lms.mailqueue
import gocept.lms.scripts
import gocept.lms.settings


def main(argv=None):
    """Console entry point: send queued mails until stopped.

    Reads only the product configuration and logging of etc/zope.conf; it
    needs neither the database nor the ZCML.
    """
    parser = argparse.ArgumentParser(
        prog='mailqueue',
        description='Send the mails the LMS queued (mail-queue) to the '
                    'SMTP server (smtp-host, smtp-port), in rounds over the '
                    'queue. Each failed attempt is one line in the log. '
                    'After failed rounds the pause grows: --interval after '
                    'the first, twice as long after each further one, up '
                    'to --max-interval; a round that fails nothing brings '
                    'it back to --interval.',
        epilog='Exit status: 0 done (or stopped), 1 with --once: a mail '
               'could not be sent and stays queued, 2 the configuration '
               'could not be read or has no mail-queue.')
    gocept.lms.scripts.add_config_option(parser)
    parser.add_argument('--once', action='store_true',
                        help='send what is queued now, then exit')
    parser.add_argument(
        '--interval', type=gocept.lms.scripts.positive_seconds,
        default=gocept.lms.mailqueue.INTERVAL, metavar='SECONDS',
        help='pause between two rounds over the queue '
             '(default: %(default)g)')
    parser.add_argument(
        '--max-interval', type=gocept.lms.scripts.positive_seconds,
        default=gocept.lms.mailqueue.MAX_INTERVAL, metavar='SECONDS',
        help='longest pause after failed rounds (default: %(default)g)')
    args = parser.parse_args(argv)
    if not gocept.lms.scripts.configure('mailqueue', args.config):
        return gocept.lms.scripts.EXIT_CONFIG
    if not gocept.lms.settings.get().mail_queue:
        print('mailqueue: mail-queue is empty in %s: mails are sent '
              'directly, there is no queue to process' % args.config,
              file=sys.stderr)
        return gocept.lms.scripts.EXIT_CONFIG
    processor = gocept.lms.mail.queue_processor(
        args.interval, max_interval=args.max_interval)
    try:
        failed = processor.run(forever=not args.once)
    except KeyboardInterrupt:
        failed = []
    return 1 if failed else 0
