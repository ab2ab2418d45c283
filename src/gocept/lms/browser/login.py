"""ZMI logins: HTTP basic auth against the principal registry, throttled.

The admin of etc/admin.zcml (and a monitoring login, if etc/site.zcml
has one) are principals of zope.principalregistry's global registry, which
checks the basic auth credentials of every request. `ThrottledLogins`
takes its place as the global IAuthentication utility (application.zcml)
and leaves everything to it, except that it counts and logs failed logins
with the login throttle of the process (throttle.py) and refuses the
attempts that the throttle refuses.

The stored password hash is bcrypt, slow on purpose; checking it for every
request (style sheets and images included) made every ZMI page slow.
`VerifiedLogins` remembers the logins that passed, for
`login-cache-seconds`, so that the next requests with the same credentials
skip bcrypt.

A refused request is not answered at once: its credentials are not
checked, and it goes on as anonymous. Where it needs a login, the answer is
HTTP 429 with Retry-After instead of the 401 that asks for a password;
what anybody may see (the clients' status pages) it still sees.
"""

import collections
import hashlib
import hmac
import logging
import os
import threading
import time

import zope.authentication.interfaces
import zope.interface
import zope.principalregistry.principalregistry

import gocept.lms.settings
import gocept.lms.throttle


log = logging.getLogger(__name__)

# Where a request keeps the throttle's Refusal for `unauthorized`, and
# the outcome of its authentication.
REFUSAL = 'gocept.lms.browser.login.refusal'
OUTCOME = 'gocept.lms.browser.login.outcome'


class VerifiedLogins:
    """Logins that passed the password check lately, in this process.

    Kept are the login, the principal's id and an HMAC of the password
    under a key made at start and never stored, so that the memory of the
    process holds no password and nothing a password could be guessed
    from offline. A changed password (etc/admin.zcml) takes effect after
    a restart, as before. At most `size` logins are kept.
    """

    def __init__(self, clock=time.monotonic, size=100):
        self.clock = clock
        self.size = size
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._logins = collections.OrderedDict()

    def _digest(self, password):
        if isinstance(password, str):
            password = password.encode('utf-8', 'surrogateescape')
        return hmac.new(self._key, password or b'', hashlib.sha256).digest()

    def principal_id(self, login, password):
        """The principal id of a login verified with this password within
        its time, or None."""
        with self._lock:
            entry = self._logins.get(login)
        if entry is None:
            return None
        digest, principal_id, until = entry
        if self.clock() >= until or not hmac.compare_digest(
                digest, self._digest(password)):
            return None
        return principal_id

    def remember(self, login, password, principal_id, seconds):
        if seconds <= 0:
            return
        entry = (self._digest(password), principal_id, self.clock() + seconds)
        with self._lock:
            self._logins[login] = entry
            self._logins.move_to_end(login)
            while len(self._logins) > self.size:
                self._logins.popitem(last=False)


verified_logins = VerifiedLogins()


@zope.interface.implementer(zope.authentication.interfaces.IAuthentication,
                            zope.authentication.interfaces.ILogout)
class ThrottledLogins:
    """The principal registry, with failed logins throttled."""

    def __init__(self, registry=None, throttle=gocept.lms.throttle.logins,
                 settings=gocept.lms.settings.get, verified=verified_logins):
        self.registry = (
            registry or zope.principalregistry.principalregistry
            .principalRegistry)
        self.throttle = throttle
        self.settings = settings
        self.verified = verified

    def authenticate(self, request):
        # The publication asks once before traversal and again at every
        # site it traverses (the root folder, the LMS site) while the
        # principal is unauthenticated; one request is one attempt.
        if OUTCOME not in request.annotations:
            request.annotations[OUTCOME] = self._authenticate(request)
        return request.annotations[OUTCOME]

    def _authenticate(self, request):
        credentials = zope.authentication.interfaces.ILoginPassword(
            request, None)
        login = credentials.getLogin() if credentials is not None else None
        if login is None:
            return None
        if isinstance(login, bytes):
            login = login.decode('utf-8', 'replace')
        # The throttle keeps the first 100 characters of a name anyway.
        name = 'ZMI login %r' % login[:100]
        address = request.get('REMOTE_ADDR', '?')
        limits = gocept.lms.throttle.Limits.from_settings(self.settings())
        throttle = self.throttle()
        refusal = throttle.refusal(name, address, limits)
        if refusal is not None:
            request.annotations[REFUSAL] = refusal
            return None
        password = credentials.getPassword()
        known = self.verified.principal_id(login, password)
        if known is not None:
            try:
                return self.registry.getPrincipal(known)
            except zope.authentication.interfaces.PrincipalLookupError:
                pass  # gone since: check the password as usual
        principal = self.registry.authenticate(request)
        if principal is not None:
            self.verified.remember(login, password, principal.id,
                                   self.settings().login_cache_seconds)
        if principal is None and throttle.failed(name, address, limits):
            log.warning('Failed login of %s from %s (further failed logins '
                        'are summed up by gocept.lms.throttle)',
                        name, address)
        return principal

    def unauthorized(self, id, request):
        refusal = request.annotations.get(REFUSAL)
        if refusal is None:
            self.registry.unauthorized(id, request)
            return
        response = request.response
        response.setStatus(429, 'Too Many Requests')
        response.setHeader('Retry-After', str(refusal.seconds))

    def unauthenticatedPrincipal(self):
        return self.registry.unauthenticatedPrincipal()

    def getPrincipal(self, id):
        return self.registry.getPrincipal(id)

    def getPrincipals(self, name):
        return self.registry.getPrincipals(name)

    def logout(self, request):
        self.registry.logout(request)
