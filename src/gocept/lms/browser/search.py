"""Search: URLs by host or by their beginning, clients by id or contact.

URLs are found through the search index (urlsearch.py), which reads the
matching range of a million URLs, a page at a time; a whole URL is also
looked up directly. Clients are few (a thousand, say): they are all read.
"""

from gocept.lms.browser.common import Page, url_rows
from gocept.lms.interfaces import IClientProvider, IURLProvider, IURLSearch


PAGE_SIZE = 50
CLIENTS_SHOWN = 50


class Search(Page):

    query = ''
    exact = None
    found = ()
    next_href = ''
    client_rows = ()
    more_clients = 0

    def update(self):
        self.query = query = self.text('q')
        if not query:
            return
        urls = self.utility(IURLProvider)
        after = self.text('after')
        try:
            bytes.fromhex(after)
        except ValueError:
            after = ''
        if not after:
            found = urls.get_url(query)
            if found is not None:
                self.exact = dict(href=self.url_href(found.id),
                                  url=found.url)
        index = self.utility(IURLSearch)
        if index is not None:
            keys, cursor = index.search(query, after=after or None,
                                        limit=PAGE_SIZE)
            self.found = url_rows(self, urls, keys)
            if cursor:
                self.next_href = self.page_url(
                    'search.html', q=query, after=cursor)
        self.first_href = self.page_url('search.html', q=query) \
            if after else ''
        self.find_clients(query.lower())

    def find_clients(self, text):
        clients = self.utility(IClientProvider)
        rows = []
        for client in clients.values():
            if any(text in (value or '').lower() for value in (
                    client.id, client.contact_name, client.contact_email)):
                rows.append(dict(
                    id=client.id, href=self.client_href(client.id),
                    contact=client.contact_name, email=client.contact_email,
                    urls=len(client.url_ids)))
        self.client_rows = rows[:CLIENTS_SHOWN]
        self.more_clients = max(0, len(rows) - CLIENTS_SHOWN)
