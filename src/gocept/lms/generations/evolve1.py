"""Replace plaintext client passwords by the hashed and sealed form.

The 3.x server kept each client's password as a plain `password`
attribute. A `Client` loaded from such a state still has it in its
`__dict__`, so this step hashes and seals it (`Client.set_password`, with
the key of `secret-key-file`) and drops it.
"""

import logging

import zope.generations.utility

import gocept.lms.interfaces
import gocept.lms.settings


log = logging.getLogger(__name__)


def evolve(context):
    root = zope.generations.utility.getRootFolder(context)
    for site in zope.generations.utility.findObjectsProviding(
            root, gocept.lms.interfaces.ILMS):
        clients = site.getSiteManager().queryUtility(
            gocept.lms.interfaces.IClientProvider)
        if clients is None:
            continue
        key_file = gocept.lms.settings.get().secret_key_file
        for client in clients.values():
            migrate_password(client, key_file)


def migrate_password(client, key_file):
    """Return whether `client` had a plaintext password."""
    # A ghost's __dict__ is empty; load the state before looking into it.
    client._p_activate()
    plain = client.__dict__.get('password')
    if plain is None:
        return False
    del client.__dict__['password']
    client.set_password(plain, key_file)
    client._p_changed = True
    log.info('Client %r: plaintext password replaced by hash', client.id)
    return True
