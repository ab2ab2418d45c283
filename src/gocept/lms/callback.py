"""Connections to the XML-RPC callbacks of clients."""

import xmlrpc.client

import zope.interface

import gocept.lms.interfaces
import gocept.lms.settings


class TimeoutTransport(xmlrpc.client.Transport):

    def __init__(self, timeout, **kw):
        super().__init__(**kw)
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


class SafeTimeoutTransport(xmlrpc.client.SafeTransport):

    def __init__(self, timeout, **kw):
        super().__init__(**kw)
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


@zope.interface.implementer(gocept.lms.interfaces.ICallbackTransport)
class CallbackTransport:
    """Real XML-RPC over HTTP(S), with the configured timeout.

    Without a timeout one hanging client would stall the whole sync run.
    """

    def connect(self, url):
        if not url:
            raise ValueError('The client has no callback URL')
        timeout = gocept.lms.settings.get().callback_timeout
        if url.startswith('https:'):
            transport = SafeTimeoutTransport(timeout)
        else:
            transport = TimeoutTransport(timeout)
        return xmlrpc.client.ServerProxy(url, transport=transport)
