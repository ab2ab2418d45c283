"""What the workers keep of a failed call to a client.

The syncer and the notifier store the last error on the client's record
(the admins' pages and the mails show it); its text is bounded, since an
error from a misbehaving client may carry its whole answer.
"""

# Characters of an error's text kept on a record.
KEPT = 500


def describe(error):
    """The error's type and text, at most KEPT characters."""
    text = '%s: %s' % (type(error).__name__, error)
    return text[:KEPT]
