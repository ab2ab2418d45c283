"""A database out of reach: which errors say so, and how a worker's
transaction rides it out (db.riding_out). The whole of it, with a
PostgreSQL killed under load, is test_faults.py."""

import unittest

import psycopg2
import transaction
import ZEO.Exceptions
from ZODB.POSException import ConflictError

import gocept.lms.db


class Clock:

    def __init__(self):
        self.now = 0.0
        self.pauses = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


class Outage:
    """func for riding_out: fails `times` times with `error`, then
    answers."""

    def __init__(self, times, error):
        self.times, self.error, self.calls = times, error, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return 'done'


class RidingOutTest(unittest.TestCase):

    def ride(self, func, wait=None):
        self.clock = Clock()
        return gocept.lms.db.riding_out(
            func, 'test', transaction.TransactionManager(), wait,
            clock=self.clock, sleep=self.clock.sleep)

    def test_what_counts_as_out_of_reach(self):
        disconnected = gocept.lms.db.disconnected
        self.assertTrue(disconnected(psycopg2.OperationalError('refused')))
        self.assertTrue(disconnected(psycopg2.InterfaceError('closed')))
        self.assertTrue(disconnected(ZEO.Exceptions.ClientDisconnected()))
        self.assertFalse(disconnected(ConflictError()))
        self.assertFalse(disconnected(ValueError()))

    def test_tries_again_with_growing_pauses_until_the_database_is_back(self):
        outage = Outage(12, psycopg2.OperationalError('refused'))
        with self.assertLogs('gocept.lms.db') as logged:
            self.assertEqual('done', self.ride(outage))
        self.assertEqual(13, outage.calls)
        self.assertEqual([0.1, 0.2, 0.4, 0.8] + [1.0] * 8,
                         [round(p, 3) for p in self.clock.pauses])
        # one line when it goes, one when it is back
        self.assertEqual(2, len(logged.output), logged.output)
        self.assertIn('out of reach (OperationalError: refused)',
                      logged.output[0])
        self.assertIn('the database is back after 9.5 s', logged.output[1])

    def test_gives_up_after_the_wait(self):
        outage = Outage(1000, psycopg2.OperationalError('refused'))
        with self.assertLogs('gocept.lms.db', 'ERROR') as logged:
            with self.assertRaises(psycopg2.OperationalError):
                self.ride(outage, wait=10)
        self.assertGreaterEqual(self.clock.now, 10)
        self.assertLess(outage.calls, 1000)
        self.assertIn('stayed out of reach', logged.output[-1])

    def test_other_errors_go_to_the_caller_at_once(self):
        outage = Outage(1, ValueError('a bug'))
        with self.assertRaises(ValueError):
            self.ride(outage)
        self.assertEqual(1, outage.calls)
        self.assertEqual([], self.clock.pauses)
