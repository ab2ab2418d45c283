"""The ZMI against requests forged by other sites, and against framing.

A browser sends an admin's credentials (basic auth) along with any
request to the LMS, also one that a page of another site makes it send:
without a check, such a page could switch a client's notifications or
unregister it. Every POST of the ZMI must therefore come from a page of
the LMS itself: its `Origin` header, or if a browser sends none its
`Referer`, must name the scheme, host and port the request went to. A
request that names another site, or none, or `Origin: null` (sandboxed
frames, some redirects), is refused with 403 before anything is traversed
or changed. GET requests change nothing on the LMS's own pages.

The check covers every browser form of the ZMI, not only the LMS's pages.
XML-RPC is not a browser request and stays as it is: clients call it from
their servers, and the API authenticates every call by its arguments.

Behind a reverse proxy the addresses the LMS sees must be the public ones
(the `++vh++` namespace), as the ZMI's links need anyway.

The answers to browsers may not be shown in frames of other sites
(`X-Frame-Options`, CSP `frame-ancestors`), so no page can lay the ZMI
under its own buttons. The clients' status page is the exception: it is
made to be framed (status.py).
"""

import urllib.parse

import zope.component
import zope.interface
import zope.publisher.interfaces
import zope.publisher.interfaces.browser
import zope.site.interfaces
import zope.traversing.interfaces

from zope.publisher.interfaces.browser import IBrowserRequest


class ICrossSiteRequest(zope.interface.Interface):
    """A POST whose origin is not the LMS itself."""


@zope.interface.implementer(ICrossSiteRequest)
class CrossSiteRequest(Exception):
    pass


DEFAULT_PORTS = {'http': 80, 'https': 443}


def origin(url):
    """`(scheme, host, port)` of an absolute URL, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme)


def same_origin(request):
    """Whether the request comes from a page of the address it went to."""
    own = origin(request.getApplicationURL())
    claimed = request.getHeader('Origin')
    if claimed is None:
        # Browsers that send no Origin on a same-site POST send the page.
        claimed = request.getHeader('Referer')
    return own is not None and claimed is not None and (
        origin(claimed.strip()) == own)


@zope.component.adapter(
    zope.site.interfaces.IRootFolder,
    zope.traversing.interfaces.IBeforeTraverseEvent)
def refuse_cross_site_posts(root, event):
    """Before the first step of traversal, from the root folder."""
    request = event.request
    if (IBrowserRequest.providedBy(request) and request.method == 'POST'
            and not same_origin(request)):
        raise CrossSiteRequest(
            'Origin %r, Referer %r' % (request.getHeader('Origin'),
                                      request.getHeader('Referer')))


class CrossSiteRequestView:
    """The answer to a refused request."""

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self):
        self.request.response.setStatus(403)
        self.request.response.setHeader(
            'Content-Type', 'text/plain; charset=utf-8')
        return ('403 Forbidden: this form may only be sent from the '
                'pages of the LMS itself. Open the page again and send it '
                'from there.\n')


# The annotation of a request whose answer may be framed.
FRAMEABLE = 'gocept.lms.frameable'


def allow_framing(request):
    request.annotations[FRAMEABLE] = True


@zope.component.adapter(zope.publisher.interfaces.IEndRequestEvent)
def forbid_framing(event):
    request = event.request
    if (IBrowserRequest.providedBy(request)
            and not request.annotations.get(FRAMEABLE)):
        response = request.response
        response.setHeader('X-Frame-Options', 'DENY')
        response.setHeader('Content-Security-Policy',
                           "frame-ancestors 'none'")
