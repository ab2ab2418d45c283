"""Requests of bin/web that meet a conflict are retried, patiently.

Several processes write to the database at once, so a request's
transaction may fail with a ConflictError. zope.publisher has the remedy
built in: the publication turns the error into `Retry`, the publisher asks
the request for a fresh copy of itself (`retry()`, which reads the body
again from the copy `HTTPInputStream` keeps) and publishes that copy. Out
of the box it does so three times, immediately; on a busy LMS that was not
enough and clients got an "Internal error (ConflictError)".

The LMS keeps that mechanism and changes two things, for every kind of
request (browser and ZMI here, XML-RPC in rpc.py, which builds on these
classes):

* a request gets `conflicts.ATTEMPTS` (40) attempts instead of four;

* before each retry the publication pauses (`conflicts.pause`: a random
  wait that grows with every attempt), so that two requests that
  conflicted do not run into each other again at once.

Every conflict is counted in `conflicts` as 'web' (`@@metrics` shows the
counts).

A request that finds the database out of reach (PostgreSQL restarting:
the driver's `OperationalError`, see `db.disconnected`) waits until the
database answers again, up to OUTAGE_WAIT seconds, and is then retried
(one attempt per outage, so that the attempts stay for the conflicts of
the busy moment after it); its connection is opened afresh. ZEO's
`ClientDisconnected` is a transient error and takes the conflicts' way
(the ZEO client waits for its server by itself).
"""

import transaction
import transaction.interfaces
import zope.publisher.interfaces
import zope.app.publication.browser
import zope.app.publication.http
import zope.app.publication.interfaces
import zope.interface
import zope.publisher.browser
import zope.publisher.http

import gocept.lms.conflicts
import gocept.lms.db


WHERE = 'web'

# Seconds a request waits for a database out of reach before its retry.
OUTAGE_WAIT = 60.0


class RetryingRequest:
    """Mixin for request classes: more attempts on a conflict."""

    __slots__ = ()

    # Retries, not attempts: the publisher counts the retries.
    retry_max_count = gocept.lms.conflicts.ATTEMPTS - 1


def retries_so_far(request):
    # HTTPRequest.retry() hands the count on to the new request.
    return getattr(request, '_retry_count', 0) or 0


class RetryingPublication:
    """Mixin for publication classes: count conflicts, pause before
    retries."""

    def beforeTraversal(self, request):
        # The first step of a retried attempt after reading the body: the
        # request before it has closed its database connection and aborted
        # its transaction, this one opens its connection only later.
        retry = retries_so_far(request)
        if retry:
            gocept.lms.conflicts.pause(retry - 1)
        super().beforeTraversal(request)

    def handleException(self, object, request, exc_info,
                        retry_allowed=True):
        # With retry_allowed the publication raises Retry for every
        # conflict; the publisher retries if the request supports it and
        # otherwise calls us again, without retry_allowed, for the error
        # answer. So each conflict is counted once, here.
        error = exc_info[1]
        if isinstance(error, transaction.interfaces.TransientError):
            if retry_allowed:
                gocept.lms.conflicts.record(
                    WHERE, retried=bool(request.supportsRetry()))
        elif gocept.lms.db.disconnected(error):
            # zope.app.publication would abort (which fails too while the
            # database is away) and answer with an error.
            gocept.lms.db.abort_quietly(transaction.manager)
            if retry_allowed and request.supportsRetry():
                gocept.lms.db.wait_for_database(
                    self.db, '%s %s' % (WHERE, request.get('PATH_INFO', '?')),
                    OUTAGE_WAIT)
                raise zope.publisher.interfaces.Retry(exc_info)
        super().handleException(object, request, exc_info, retry_allowed)


class BrowserRequest(RetryingRequest, zope.publisher.browser.BrowserRequest):
    pass


class BrowserPublication(RetryingPublication,
                         zope.app.publication.browser.BrowserPublication):
    pass


class HTTPRequest(RetryingRequest, zope.publisher.http.HTTPRequest):
    pass


class HTTPPublication(RetryingPublication,
                      zope.app.publication.http.HTTPPublication):
    pass


@zope.interface.implementer(
    zope.app.publication.interfaces.IRequestPublicationFactory)
class PublicationFactory:
    """Hands out `request` and `publication` for the methods and types its
    <publisher> directive names."""

    request = publication = None

    def canHandle(self, environment):
        return True

    def __call__(self):
        return self.request, self.publication


class BrowserFactory(PublicationFactory):
    """GET, POST and HEAD that are not XML-RPC (the ZMI, @@metrics)."""

    request, publication = BrowserRequest, BrowserPublication


class HTTPFactory(PublicationFactory):
    """Every other method (PUT, DELETE, ...)."""

    request, publication = HTTPRequest, HTTPPublication
