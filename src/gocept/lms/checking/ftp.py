"""Checking ftp URLs with ftplib in a worker thread.

A file is fine once its download starts (the server answered RETR with a
preliminary 1xx reply and opened the data connection); a directory once it
can be listed. The URL's own credentials are used, otherwise an anonymous
login.

The host is resolved through the guard first and ftplib connects to that
address. Passive-mode data connections go to the control connection's peer,
never to the address in the server's PASV reply (ftplib's default since
Python 3.10, `trust_server_pasv_ipv4_address` is False), so a hostile
server cannot point the data connection elsewhere.
"""

import asyncio
import errno
import ftplib
import socket
import urllib.parse


from gocept.lms.checking import guard
from gocept.lms.checking.hosts import host_of
from gocept.lms.checking.policy import Outcome
from gocept.lms.checking import policy as p


def _classify_reply(exc, what):
    text = str(exc).strip()[:200]
    code = text[:3]
    if isinstance(exc, ftplib.error_temp) or code.startswith('4'):
        return Outcome(p.KIND_TRANSIENT, f'FTP {what}: {text}')
    if code == '550':
        return Outcome(p.KIND_MISSING, f'FTP {what}: {text}')
    return Outcome(p.KIND_PERMANENT, f'FTP {what}: {text}')


def _split_path(path):
    path = urllib.parse.unquote(path)
    # RFC 1738 typecode (;type=a/i/d)
    if ';type=' in path:
        path, typecode = path.rsplit(';type=', 1)
        if typecode == 'd':
            return path, True
    return path, path == '' or path.endswith('/')


def _check_sync(address, family, port, user, password, path, is_dir,
                connect_timeout, read_timeout):
    ftp = ftplib.FTP(timeout=connect_timeout)
    try:
        try:
            ftp.connect(address, port, timeout=connect_timeout)
        except socket.timeout:
            return Outcome(p.KIND_TIMEOUT,
                           f'FTP connect timeout ({connect_timeout:g} s)')
        except ConnectionRefusedError:
            return Outcome(p.KIND_REFUSED,
                           f'FTP connection refused by {address}:{port}')
        ftp.sock.settimeout(read_timeout)
        ftp.timeout = read_timeout
        try:
            ftp.login(user, password)
        except ftplib.all_errors as e:
            if isinstance(e, (ftplib.error_reply, ftplib.error_perm,
                              ftplib.error_temp)):
                return _classify_reply(e, 'login failed')
            raise
        ftp.voidcmd('TYPE I')
        if not is_dir:
            try:
                conn = ftp.transfercmd('RETR ' + path)
            except ftplib.error_perm as e:
                # The name may be a directory written without a slash.
                try:
                    ftp.cwd(path)
                except ftplib.error_perm:
                    return _classify_reply(e, f'cannot retrieve {path}')
                is_dir = True
            else:
                # The download started: that is all we wanted to know.
                conn.close()
                try:
                    ftp.abort()
                except ftplib.all_errors:
                    pass
                return Outcome(p.KIND_OK, f'FTP file {path or "/"} available')
        if is_dir:
            try:
                if path:
                    ftp.cwd(path)
                ftp.nlst()
            except (ftplib.error_perm, ftplib.error_temp) as e:
                # An empty directory answers NLST with 550 on some servers.
                if str(e).startswith('550') and 'No files' in str(e):
                    pass
                else:
                    return _classify_reply(e, f'cannot list {path or "/"}')
            return Outcome(p.KIND_OK,
                           f'FTP directory {path or "/"} listed')
    except socket.timeout:
        return Outcome(p.KIND_TIMEOUT, f'FTP read timeout ({read_timeout:g} s)')
    except ConnectionResetError:
        return Outcome(p.KIND_RESET, 'FTP connection reset')
    except EOFError:
        return Outcome(p.KIND_RESET, 'FTP server closed the connection')
    except (ftplib.error_reply, ftplib.error_proto) as e:
        return Outcome(p.KIND_PROTOCOL, f'FTP unexpected reply: {e}'[:200])
    except ftplib.error_temp as e:
        return _classify_reply(e, 'error')
    except ftplib.error_perm as e:
        return _classify_reply(e, 'error')
    except OSError as e:
        if e.errno in (errno.ECONNRESET, errno.EPIPE):
            return Outcome(p.KIND_RESET, 'FTP connection reset')
        return Outcome(p.KIND_TRANSIENT, f'FTP network error: {e}')
    finally:
        try:
            ftp.close()
        except OSError:
            pass


async def check_ftp(url, settings, resolver, loop, executor, pace=None):
    """Check one ftp URL; return an `Outcome`.

    `resolver` is the `guard.GuardedResolver` also used for HTTP.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 21
    except ValueError as e:
        return Outcome(p.KIND_INVALID, f'invalid URL: {e}')
    host = parts.hostname
    if not host:
        return Outcome(p.KIND_INVALID, 'no host in URL')
    try:
        address, family = await resolver.resolve_one(host, port)
    except guard.Forbidden as e:
        return Outcome(p.KIND_FORBIDDEN, str(e))
    except socket.gaierror as e:
        if e.errno in (socket.EAI_NONAME, getattr(socket, 'EAI_NODATA', -5)):
            return Outcome(p.KIND_NXDOMAIN, f'host name {host} does not exist')
        return Outcome(p.KIND_DNS, f'DNS lookup of {host} failed: {e}')
    except OSError as e:
        return Outcome(p.KIND_DNS, f'DNS lookup of {host} failed: {e}')
    user = urllib.parse.unquote(parts.username or 'anonymous')
    password = urllib.parse.unquote(
        parts.password or ('' if parts.username else 'anonymous@'))
    path, is_dir = _split_path(parts.path)
    pace_host = host_of(url) or host.lower()
    if pace is not None:
        await pace.wait(pace_host)
    future = loop.run_in_executor(
        executor, _check_sync, address, family, port, user, password, path,
        is_dir, settings.connect_timeout, settings.read_timeout)
    try:
        # The thread ends on its own through the socket timeouts; this only
        # bounds a server that keeps trickling replies.
        return await asyncio.wait_for(future, settings.total_timeout)
    except asyncio.TimeoutError:
        return Outcome(p.KIND_TIMEOUT, f'FTP check took longer than '
                                       f'{settings.total_timeout:g} s')
    finally:
        if pace is not None:
            pace.done(pace_host)
