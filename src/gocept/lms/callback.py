"""Connections to the XML-RPC callbacks of clients, and sending states."""

import concurrent.futures
import xmlrpc.client

import zope.interface

import gocept.lms.interfaces


class TimeoutTransport(xmlrpc.client.Transport):
    """xmlrpc.client's transport, with a limit on every socket
    operation."""

    def __init__(self, timeout, **kw):
        super().__init__(**kw)
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


class SafeTimeoutTransport(TimeoutTransport, xmlrpc.client.SafeTransport):
    """The same over https: SafeTransport's connections, with the
    limit."""


@zope.interface.implementer(gocept.lms.interfaces.ICallbackTransport)
class CallbackTransport:
    """Real XML-RPC over HTTP(S), with the configured timeout.

    Without a timeout one hanging client would stall the whole sync run.
    """

    def connect(self, url, timeout):
        if not url:
            raise ValueError('The client has no callback URL')
        if url.startswith('https:'):
            transport = SafeTimeoutTransport(timeout)
        else:
            transport = TimeoutTransport(timeout)
        return xmlrpc.client.ServerProxy(url, transport=transport)


def send_states(proxy, client_id, password, keys, read_rows, batch_size):
    """Send the states of the URLs `keys` with updateManyStates, in batches
    of `batch_size`; return how many went out.

    `read_rows(keys)` gives the `[url, state, reason]` rows of some keys;
    callers read each batch in a short transaction of their own, so that
    none stays open while the client takes its time. One batch travels
    while the next is read: the client's time to take a batch and ours to
    load one overlap. Only one call is in flight, so the client sees them
    in order.
    """
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(1) as sender:
        in_flight = None
        for start in range(0, len(keys), batch_size):
            states = read_rows(keys[start:start + batch_size])
            if in_flight is not None:
                in_flight.result()
                in_flight = None
            if states:
                in_flight = sender.submit(
                    proxy.updateManyStates, client_id, password, states)
                sent += len(states)
        if in_flight is not None:
            in_flight.result()
    return sent
