"""The XML-RPC transport of the API: from a POST to a method and back.

Every text/xml POST becomes an `XMLRPCRequest` (api.zcml's publisher):
its body is parsed safely (no document type declarations, a nesting
limit, a size limit) and the method's arguments are checked against the
signatures of `api.py` before anything is called. `XMLRPCPublication`
lets a path lead only to an LMS site and one of its methods, and
`XMLRPCResponse` turns every refusal into a Fault that says what to
change. The methods themselves are `api.LMSAPI`; protocol.txt is the
reference of what clients send and get.
"""

import logging
import xml.parsers.expat
import xmlrpc.client

import transaction
import zope.app.publication.interfaces
import zope.app.publication.xmlrpc
import zope.app.publisher.xmlrpc
import zope.component
import zope.container.traversal
import zope.interface
import zope.publisher.interfaces
import zope.publisher.interfaces.http
import zope.publisher.xmlrpc
import zope.security.interfaces
import zope.security.proxy
import zope.traversing.namespace

import gocept.lms.interfaces
import gocept.lms.publication
import gocept.lms.settings
from gocept.lms.api import (
    ARGUMENT_TYPES, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
    METHOD_NOT_FOUND, PARSE_ERROR, SIGNATURES, TOO_LARGE,
    UNSUPPORTED_ENCODING, shorten, signature)


log = logging.getLogger(__name__)

# Arrays and structs inside each other in a request, at most. No method
# takes more than an array of strings; the limit is checked while parsing,
# before anything walks the values recursively (repr, str, the log).
MAX_NESTING = 32

_XMLRPC_TYPES = [
    (bool, 'a boolean'), (int, 'an int'), (float, 'a double'),
    (str, 'a string'), (list, 'an array'), (tuple, 'an array'),
    (dict, 'a struct'), (type(None), 'nil'),
    (xmlrpc.client.DateTime, 'a dateTime'), (xmlrpc.client.Binary, 'base64'),
]


def _xmlrpc_type(value):
    for cls, name in _XMLRPC_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


# The request: what reaches a method has been parsed safely and has the
# right number of arguments, of the right types.

class RequestError(Exception):
    """A request the LMS refuses before calling a method."""

    def __init__(self, code, message, status=200):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ForbiddenDeclaration(ValueError):
    pass


class NestedTooDeep(ValueError):
    pass


def _refuse_declaration(*args):
    raise ForbiddenDeclaration()


def parse_request(body):
    """(args, method name) of an XML-RPC request body.

    A document type declaration is refused outright: XML-RPC never needs
    one, and it is the door for entity expansion ("billion laughs") and
    external entities. So are values nested more than MAX_NESTING arrays
    or structs deep: parsing them is cheap, but everything that later
    walks such a value recursively (repr() for the log, str(), the
    response) would run out of stack.

    xmlrpc.client's `getparser` hides its expat parser, so the parser is
    made here and fed to the public `Unmarshaller`, as getparser does.
    """
    unmarshaller = xmlrpc.client.Unmarshaller()
    expat = xml.parsers.expat.ParserCreate(None, None)
    expat.StartDoctypeDeclHandler = _refuse_declaration
    expat.EntityDeclHandler = _refuse_declaration
    depth = 0

    def start_element(tag, attrs):
        nonlocal depth
        if tag in ('array', 'struct'):
            depth += 1
            if depth > MAX_NESTING:
                raise NestedTooDeep()
        unmarshaller.start(tag, attrs)

    def end_element(tag):
        nonlocal depth
        if tag in ('array', 'struct'):
            depth -= 1
        unmarshaller.end(tag)

    expat.StartElementHandler = start_element
    expat.EndElementHandler = end_element
    expat.CharacterDataHandler = unmarshaller.data
    unmarshaller.xml(None, None)
    expat.Parse(body, True)
    return unmarshaller.close(), unmarshaller.getmethodname()


def check_arguments(method, args):
    """Refuse `args` for `method` unless their number and types are
    right; the Fault names what is expected."""
    names = SIGNATURES[method]
    if len(args) != len(names):
        raise RequestError(
            INVALID_PARAMS,
            '%s takes %d arguments, %d given: %s.'
            % (method, len(names), len(args), signature(method)))
    for name, value in zip(names, args):
        test, expected = ARGUMENT_TYPES[name]
        if not test(value):
            raise RequestError(
                INVALID_PARAMS,
                '%s must be %s, not %s: %s.'
                % (name, expected, _xmlrpc_type(value), signature(method)))


@zope.interface.provider(
    zope.app.publication.interfaces.IXMLRPCRequestFactory)
class XMLRPCRequest(gocept.lms.publication.RetryingRequest,
                    zope.publisher.xmlrpc.XMLRPCRequest):
    """A request that meets a conflict is published again, up to
    `conflicts.ATTEMPTS` times (publication.py). Each attempt is a new
    request that reads the body from the copy the attempt before it kept
    (`HTTPInputStream.cacheStream`, a temporary file for a body of 64 KiB
    or more) and parses it again."""

    _retried = False
    _previous_copy = None

    def _createResponse(self):
        return XMLRPCResponse()

    def retry(self):
        request = super().retry()
        self._retried = True
        request._previous_copy = self._body_instream.cacheStream
        return request

    def close(self):
        # zope.publisher drops the copies of the body without closing
        # them. This attempt's copy is still needed if there is a next
        # attempt; the one it read from itself is not.
        stream = self._body_instream
        super().close()
        if stream is not None and not self._retried:
            stream.cacheStream.close()
        if self._previous_copy is not None:
            self._previous_copy.close()
            self._previous_copy = None

    def processInputs(self):
        limit = gocept.lms.settings.get().max_request_bytes
        too_large = RequestError(
            TOO_LARGE,
            'The request is larger than the %d bytes this LMS accepts. '
            'Send fewer URLs per call.' % limit, status=413)
        try:
            length = int(self._environ.get('CONTENT_LENGTH') or -1)
        except ValueError:
            length = -1
        if length > limit:
            raise too_large
        body = self._body_instream.read(limit + 1)
        if len(body) > limit:
            raise too_large
        try:
            args, method = parse_request(body)
        except ForbiddenDeclaration:
            raise RequestError(
                INVALID_REQUEST,
                'Document type declarations (<!DOCTYPE ...>) and entity '
                'declarations are not accepted in XML-RPC requests.')
        except NestedTooDeep:
            raise RequestError(
                INVALID_PARAMS,
                'Arguments nested more than %d arrays or structs deep are '
                'not accepted; no method of the LMS takes more than an '
                'array of strings.' % MAX_NESTING)
        except xml.parsers.expat.ExpatError as error:
            if 'encoding' in str(error):
                raise RequestError(
                    UNSUPPORTED_ENCODING,
                    'Cannot decode the request: %s. Send UTF-8.' % error)
            raise RequestError(
                PARSE_ERROR,
                'The request is not well-formed XML (%s). Send an XML-RPC '
                'methodCall document, encoded in UTF-8.' % error)
        except Exception as error:
            # The unmarshaller's complaints about bad values: an <int>
            # that is no number, an unknown type tag, a truncated struct.
            raise RequestError(
                INVALID_REQUEST,
                'Not a valid XML-RPC request (%s: %.200s).'
                % (type(error).__name__, error))
        if not method:
            raise RequestError(
                INVALID_REQUEST,
                'Not a valid XML-RPC request: no <methodName> in a '
                '<methodCall>.')
        # Traversal (XMLRPCPublication) ends at a method or nowhere, so
        # the last name is the method that will be called, if any.
        name = method.rsplit('.', 1)[-1]
        if name in SIGNATURES:
            check_arguments(name, args)
        self._args = args
        self._method_name = method
        self.setPathSuffix(method.split('.'))


class XMLRPCPublication(gocept.lms.publication.RetryingPublication,
                        zope.app.publication.xmlrpc.XMLRPCPublication):
    """Over XML-RPC a path leads by plain names to an LMS site and one
    of its methods, and nowhere else: namespaces (++etc++site, ++skin++,
    ++attribute++, @@view; ++vh++ for a proxy in front of the LMS
    excepted), empty names ('.' and '..' in a method name), names below
    a method (its attributes), views not made for XML-RPC (xmlrpc_view)
    and objects that are no method answer "not found"."""

    def traverseName(self, request, ob, name):
        namespace = zope.traversing.namespace.nsParse(name)[0]
        if not name or namespace not in ('', 'vh'):
            raise not_found(name)
        if zope.app.publisher.xmlrpc.IMethodPublisher.providedBy(ob):
            raise not_found(name, 'not found below a method')
        return super().traverseName(request, ob, name)

    def callObject(self, request, ob):
        if not callable(zope.security.proxy.removeSecurityProxy(ob)):
            raise not_found(request._method_name, 'is not a method')
        return super().callObject(request, ob)

    def handleException(self, object, request, exc_info,
                        retry_allowed=True):
        error = exc_info[1]
        if isinstance(error, RequestError):
            # The caller's mistake, answered with a Fault that says what
            # to change: worth a line in the log, not a traceback.
            transaction.abort()
            log.info('Refused an XML-RPC request from %s: %s',
                     request.get('REMOTE_ADDR', '?'), error.message)
            request.response.reset()
            request.response.handleException(exc_info)
            return
        super().handleException(object, request, exc_info, retry_allowed)


class XMLRPCFactory(gocept.lms.publication.PublicationFactory):
    """Every POST of text/xml: the LMS's request and publication."""

    request, publication = XMLRPCRequest, XMLRPCPublication


class XMLRPCResponse(zope.publisher.xmlrpc.XMLRPCResponse):

    def handleException(self, exc_info):
        error = exc_info[1]
        if isinstance(error, RequestError):
            self.setResult(xmlrpc.client.Fault(error.code, error.message))
            self.setStatus(error.status)
        elif isinstance(error, zope.publisher.interfaces.NotFound):
            not_found_error = not_found(getattr(error, 'name', ''))
            self.setResult(xmlrpc.client.Fault(
                not_found_error.code, not_found_error.message))
            self.setStatus(200)
        elif isinstance(error, zope.security.interfaces.Unauthorized):
            self.setResult(xmlrpc.client.Fault(401, 'Unauthorized'))
            self.setStatus(401)
        elif isinstance(error, xmlrpc.client.Fault):
            super().handleException(exc_info)
        else:
            # Internals are for the log (the publication wrote them
            # there), not for the caller.
            self.setResult(xmlrpc.client.Fault(
                INTERNAL_ERROR,
                'Internal error (%s) in the LMS; its log has the details.'
                % type(error).__name__))
            self.setStatus(500)


# Traversal. The clients are anonymous to the security policy (they prove
# themselves inside each method), so they must reach the API without
# permissions on the root folder or the site; nothing else becomes
# reachable that way.

def not_found(name, why='not found'):
    # A Fault rather than NotFound, whose view answers 404 with an empty
    # body: the caller learns what it can call.
    return RequestError(
        METHOD_NOT_FOUND,
        'Unknown method or wrong address (%s %s). An LMS serves '
        'these methods at the address of its site: %s.'
        % (shorten(name), why, ', '.join(sorted(SIGNATURES))))


class RootTraverser(zope.container.traversal.ItemTraverser):
    """XML-RPC traversal from the root folder: LMS sites for everybody."""

    def publishTraverse(self, request, name):
        item = zope.security.proxy.removeSecurityProxy(
            self.context).get(name)
        if gocept.lms.interfaces.ILMS.providedBy(item):
            return item
        if item is None:
            # A wrong address answers "not found", not "unauthorized",
            # whoever asks.
            return xmlrpc_view(self.context, request, name)
        return super().publishTraverse(request, name)


class LMSTraverser(zope.container.traversal.ItemTraverser):
    """XML-RPC traversal on the LMS site: only the API methods."""

    def publishTraverse(self, request, name):
        return xmlrpc_view(self.context, request, name)


def xmlrpc_view(context, request, name):
    """The view `name` of `context` that is made for XML-RPC.

    Views for any HTTP request (absolute_url, PUT, OPTIONS) and the
    traversal namespaces (adapters for any request) answer to the same
    names, but they are no XML-RPC methods and would fail on the
    arguments: "not found" as well.
    """
    adapters = zope.component.getSiteManager().adapters
    required = zope.interface.providedBy(context)
    factory = adapters.lookup(
        (required, zope.interface.providedBy(request)),
        zope.interface.Interface, name)
    if factory is None or factory is adapters.lookup(
            (required, zope.publisher.interfaces.http.IHTTPRequest),
            zope.interface.Interface, name):
        raise not_found(name)
    view = factory(context, request)
    if view is None:
        raise not_found(name)
    return view
