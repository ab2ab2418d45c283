"""The URL index keyed by host and string (url.index_key) where hashes
meet: hosts that share a range, URL strings whose index key is taken."""

import unittest

import transaction
import zope.component

import gocept.lms.tests
import gocept.lms.url
from gocept.lms.interfaces import IURLProvider, IURLSearch


class SharedHashesTest(unittest.TestCase):

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        # Two hashes per host and two per string: most URLs collide.
        for name, bits in (('HOST_BITS', 1), ('STRING_BITS', 1)):
            self.addCleanup(setattr, gocept.lms.url, name,
                            getattr(gocept.lms.url, name))
            setattr(gocept.lms.url, name, bits)
        gocept.lms.tests.site_setup(self.layer.getRootFolder())
        self.urls = zope.component.getUtility(IURLProvider)
        self.index = zope.component.getUtility(IURLSearch)
        self.strings = ['http://%s.example/%d' % (host, n)
                        for host in 'abcde' for n in range(4)]
        self.urls.add_multiple(self.strings)

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def search(self, query, limit):
        """The URLs of every page of a search with `limit` per page."""
        found, cursor, pages = [], None, 0
        while True:
            keys, cursor = self.index.search(query, after=cursor,
                                             limit=limit)
            found.extend(self.urls.by_id(key).url for key in keys)
            pages += 1
            if cursor is None or pages > 100:
                return found

    def test_every_url_is_found_by_its_string(self):
        self.assertTrue(len(self.urls._collisions))
        for string in self.strings:
            self.assertEqual(string, self.urls.get_url(string).url)

    def test_a_search_pages_through_a_host_once(self):
        for host in 'abcde':
            mine = sorted(s for s in self.strings
                          if s.startswith('http://%s.' % host))
            for limit in (1, 2, 50):
                self.assertEqual(
                    mine, sorted(self.search('%s.example' % host, limit)))

    def test_removed_urls_are_not_found(self):
        gone = self.urls.get_url('http://a.example/1')
        self.urls.remove(gone)
        self.assertIsNone(self.urls.get_url('http://a.example/1'))
        self.assertEqual(
            ['http://a.example/0', 'http://a.example/2',
             'http://a.example/3'],
            sorted(self.search('a.example', 1)))


class KeyedHashesTest(unittest.TestCase):
    """The index's hashes are keyed with a secret of each site, so that a
    client cannot compute URL strings whose index keys are taken."""

    layer = gocept.lms.tests.functional_layer

    def setUp(self):
        gocept.lms.tests.site_setup(self.layer.getRootFolder())
        self.urls = zope.component.getUtility(IURLProvider)

    def tearDown(self):
        transaction.abort()
        gocept.lms.tests.doctest_teardown()

    def test_each_site_has_a_secret_of_its_own(self):
        other = gocept.lms.url.URLProvider()
        self.assertEqual(16, len(self.urls._salt))
        self.assertNotEqual(self.urls._salt, other._salt)
        url = 'http://a.example/x'
        self.assertNotEqual(gocept.lms.url.index_key(url, self.urls._salt),
                            gocept.lms.url.index_key(url, other._salt))

    def test_the_index_holds_the_keyed_hash(self):
        url = 'http://a.example/x'
        [added] = self.urls.add_multiple([url])
        salt = self.urls._salt
        self.assertEqual(
            {gocept.lms.url.index_key(url, salt): added.id},
            dict(self.urls._index.items()))
        low, high = gocept.lms.url.host_range('example.a', salt)
        self.assertEqual([added.id], [
            key for position, key in self.urls.host_entries('example.a')])
        self.assertTrue(low <= gocept.lms.url.index_key(url, salt) <= high)
