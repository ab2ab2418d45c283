"""The support for tests that start servers (processes.py)."""

import socket
import unittest

from gocept.lms.tests import processes


class FreePortTest(unittest.TestCase):

    def test_a_port_outside_the_range_of_outgoing_connections(self):
        # An outgoing connection cannot take it as its local port before
        # the test's server binds it.
        for attempt in range(20):
            port = processes.free_port()
            self.assertGreaterEqual(port, processes.LOWEST_PORT)
            self.assertLess(port, processes.ephemeral_low())
            with socket.socket() as s:
                s.bind(('127.0.0.1', port))

    def test_a_port_in_use_is_not_given(self):
        taken = []
        try:
            for attempt in range(50):
                s = socket.socket()
                s.bind(('127.0.0.1', processes.free_port()))
                s.listen()
                taken.append(s)
            ports = {s.getsockname()[1] for s in taken}
            self.assertEqual(50, len(ports))
            self.assertNotIn(processes.free_port(), ports)
        finally:
            for s in taken:
                s.close()
