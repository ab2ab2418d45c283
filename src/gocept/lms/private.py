"""Files and directories for the LMS's own user only.

The database, the secrets (the admin login's hash, the admin secret, the
key that seals client passwords) and the queued mails (a registration mail
carries the client's password) must not be readable by other users of the
host. They are created that way whatever the umask of the process.
"""

import os


DIRECTORY = 0o700
FILE = 0o600


def directory(path):
    """Create the directory `path` (and missing parents) unless it exists;
    a new `path` is for the owner only. Returns `path`."""
    # makedirs applies the mode to the last directory only; parents are
    # ordinary directories such as /srv.
    os.makedirs(path, DIRECTORY, exist_ok=True)
    return path


def restrict(path):
    """Take group and other permissions away from an existing `path` that
    this user owns (made by an earlier version, or under a wider umask).
    True if it had to be changed."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return False
    os.chmod(path, st.st_mode & 0o700)
    return True


def write(path, text, replace=False):
    """Write `text` to the file `path`, readable by the owner only.

    Without `replace` the file must not exist yet (FileExistsError): a
    secret written once is not overwritten by a second process.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, FILE)
    with os.fdopen(fd, 'w') as f:
        # A replaced file keeps the mode it had.
        os.fchmod(fd, FILE)
        f.write(text)
