"""A PostgreSQL server of its own for trying the LMS on PostgreSQL and
for the tests: a cluster in one directory (``var/postgresql`` for
``bin/pgserver``, a temporary one in tests), listening on 127.0.0.1 only,
with one database for the LMS and a password that sits in a libpq password
file beside the cluster (mode 0600).

It uses the PostgreSQL of the host (Debian's package: ``initdb``,
``pg_ctl`` and ``postgres`` in ``/usr/lib/postgresql/<version>/bin``).
PostgreSQL refuses to run as root: started by root, the cluster belongs to
the ``postgres`` user and its programs run through ``runuser``; the
directories above the cluster must then let that user pass (mode o+x),
which is given to the cluster's own directory and the one above it (not
to anything else, nor the right to list them).

A production LMS uses a PostgreSQL of its own operators instead (README,
"Running on PostgreSQL"); nothing else in the LMS depends on this module.
"""

import argparse
import glob
import os
import pwd
import secrets
import signal
import subprocess
import sys
import time

import gocept.lms.private


POSTGRES_USER = 'postgres'
DEFAULT_DIRECTORY = os.path.join('var', 'postgresql')
DEFAULT_PORT = 5433
HOST = '127.0.0.1'

# Appended to the cluster's postgresql.conf. TCP on loopback only, no unix
# socket (whose directory would be /run/postgresql, the host's own):
# every client, psql and pg_dump included, connects to 127.0.0.1.
SERVER_CONF = """
# gocept.lms (pgserver.py): loopback only, no unix socket
listen_addresses = '{host}'
unix_socket_directories = ''
max_connections = 200
"""

# Replaces initdb's pg_hba.conf: passwords (SCRAM), over loopback only.
HBA_CONF = """\
# gocept.lms (pgserver.py): password logins from this host only
host  all  all  127.0.0.1/32  scram-sha-256
host  all  all  ::1/128       scram-sha-256
"""


class PostgreSQLError(Exception):
    """The server cannot be set up, started or stopped; says why."""


def bin_directory():
    """Where the newest PostgreSQL of the host keeps its programs."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda path: int(path.split('/')[-3]))
    if not found:
        raise PostgreSQLError(
            'no PostgreSQL server here (/usr/lib/postgresql/*/bin/initdb); '
            'install Debian\'s package: apt-get install postgresql')
    return os.path.dirname(found[-1])


class PostgreSQL:
    """The cluster in `directory`, served on `port` of 127.0.0.1, with the
    database `database` owned by the superuser `user`."""

    def __init__(self, directory=DEFAULT_DIRECTORY, port=DEFAULT_PORT,
                 database='lms', user='lms'):
        self.directory = os.path.abspath(directory)
        self.port = port
        self.database = database
        self.user = user
        self.data = os.path.join(self.directory, 'data')
        self.passfile = os.path.join(self.directory, 'pgpass')
        self.logfile = os.path.join(self.data, 'server.log')
        self.as_root = os.geteuid() == 0

    # --- how clients reach it

    def dsn(self, database=None):
        """The libpq connection string for `database` (the LMS's)."""
        return ('host=%s port=%d dbname=%s user=%s passfile=%s' % (
            HOST, self.port, database or self.database, self.user,
            self.passfile))

    def connect(self, database='postgres'):
        import psycopg2
        connection = psycopg2.connect(self.dsn(database))
        connection.autocommit = True
        return connection

    def query(self, sql, parameters=(), database=None):
        """The rows `sql` answers in `database` (this one's), each
        statement on its own (autocommit); None for a statement without
        rows."""
        connection = self.connect(database or self.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall() if cursor.description else None
        finally:
            connection.close()

    # --- running its programs

    def _command(self, program, *args):
        command = [os.path.join(bin_directory(), program)] + list(args)
        if self.as_root:
            command = ['runuser', '-u', POSTGRES_USER, '--'] + command
        return command

    def _run(self, program, *args):
        result = subprocess.run(
            self._command(program, *args), capture_output=True, text=True)
        if result.returncode:
            raise PostgreSQLError('%s failed: %s' % (
                program, (result.stderr or result.stdout).strip()[-2000:]))
        return result

    # --- the cluster

    def initialized(self):
        return os.path.exists(os.path.join(self.data, 'PG_VERSION'))

    def init(self):
        """Create the cluster unless it exists; True if it was created."""
        if self.initialized():
            return False
        gocept.lms.private.directory(self.directory)
        owner = None
        if self.as_root:
            try:
                owner = pwd.getpwnam(POSTGRES_USER)
            except KeyError:
                raise PostgreSQLError(
                    'PostgreSQL does not run as root, and there is no user '
                    '%r to run it as' % POSTGRES_USER)
            for path in (os.path.dirname(self.directory), self.directory):
                os.chmod(path, os.stat(path).st_mode | 0o001)
            gocept.lms.private.directory(self.data)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
        password = secrets.token_urlsafe(24)
        # initdb reads the superuser's password from a file; it is deleted
        # once the cluster exists.
        pwfile = os.path.join(self.directory, 'initial-password')
        gocept.lms.private.write(pwfile, password + '\n', replace=True)
        if owner:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            self._run('initdb', '-D', self.data, '-U', self.user,
                      '--pwfile', pwfile, '--auth', 'scram-sha-256',
                      '-E', 'UTF8', '--locale', 'C')
        finally:
            os.remove(pwfile)
        # The server's own files are written as its user (runuser).
        self._write_server_file('postgresql.conf',
                                SERVER_CONF.format(host=HOST), 'a')
        self._write_server_file('pg_hba.conf', HBA_CONF, 'w')
        gocept.lms.private.write(
            self.passfile, '%s:*:*:%s:%s\n' % (HOST, self.user, password),
            replace=True)
        return True

    def _write_server_file(self, name, text, mode):
        with open(os.path.join(self.data, name), mode) as f:
            f.write(text)

    def pid(self):
        """The pid of the running postmaster, or None."""
        try:
            with open(os.path.join(self.data, 'postmaster.pid')) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def start(self, timeout=60):
        """Create the cluster if needed, start the server, create the
        database if needed. Returns self."""
        self.init()
        self._run('pg_ctl', 'start', '-w', '-t', str(int(timeout)),
                  '-D', self.data, '-l', self.logfile,
                  '-o', '-p %d' % self.port)
        self.create_database(self.database)
        return self

    def create_database(self, name):
        """Create the database `name` unless it exists."""
        if not self.query('SELECT 1 FROM pg_database WHERE datname = %s',
                          (name,), 'postgres'):
            # a name, not a value: it cannot be a query parameter
            self.query('CREATE DATABASE "%s"' % name, database='postgres')

    def stop(self, timeout=60):
        """Stop the server (ending the sessions of its clients)."""
        if self.pid() is None:
            return
        self._run('pg_ctl', 'stop', '-w', '-t', str(int(timeout)),
                  '-m', 'fast', '-D', self.data)

    def kill(self):
        """SIGKILL to the postmaster and every process it started, as when
        the host dies; `start` recovers the cluster."""
        pid = self.pid()
        if pid is None:
            return
        children = [int(name) for name in os.listdir('/proc')
                    if name.isdigit()
                    and (process_state(name) or (None, None))[1] == pid]
        for victim in [pid] + children:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Until they are gone, reaped too: a new postmaster refuses to
        # start while the pid in postmaster.pid exists, even as a zombie.
        deadline = time.monotonic() + 30
        while (any(os.path.exists('/proc/%d' % victim)
                   for victim in [pid] + children)
               and time.monotonic() < deadline):
            time.sleep(0.05)


def process_state(pid):
    """State and parent pid of process `pid`, or None once it is gone."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            # they follow the command, which is in parentheses
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='pgserver',
        description='A local PostgreSQL server for the LMS, for trying it '
                    'out on PostgreSQL: the cluster in DIRECTORY, on '
                    '127.0.0.1:PORT only, with the database "lms" and its '
                    'password in DIRECTORY/pgpass (etc/zodb-postgresql.conf '
                    'points there).',
        epilog='Exit status: 0 done (status: running), 1 failed, '
               '3 (status) not running.')
    parser.add_argument('action', choices=['start', 'stop', 'status', 'dsn'])
    parser.add_argument('-d', '--directory', default=DEFAULT_DIRECTORY,
                        help='default: %(default)s')
    parser.add_argument('-p', '--port', type=int, default=DEFAULT_PORT,
                        help='default: %(default)s')
    args = parser.parse_args(argv)
    server = PostgreSQL(args.directory, args.port)
    try:
        if args.action == 'start':
            if server.pid() is not None:
                print('pgserver: already running (pid %s)' % server.pid())
                return 0
            created = server.init()
            server.start()
            print('pgserver: %s cluster in %s, serving 127.0.0.1:%d '
                  '(pid %s); its log: %s' % (
                      'new' if created else 'the', server.directory,
                      server.port, server.pid(), server.logfile))
            print('dsn %s' % server.dsn())
        elif args.action == 'stop':
            server.stop()
        elif args.action == 'status':
            pid = server.pid()
            print('pgserver: %s' % ('running (pid %s)' % pid if pid
                                    else 'not running'))
            return 0 if pid else 3
        else:
            print(server.dsn())
    except PostgreSQLError as e:
        print('pgserver: %s' % e, file=sys.stderr)
        return 1
    return 0
