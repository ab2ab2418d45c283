"""One URL: what is known of it, who subscribes to it, a check now."""

import gocept.lms.browser.actions
from gocept.lms.browser.common import Page, state_class, when, when_seconds
from gocept.lms.interfaces import IURLProvider, UNKNOWN


def history_text(history):
    """The failure history the checking policy keeps (checking/policy.py,
    History: since, failures, kind, unavailable), for people."""
    if not history:
        return ''
    since, failures, kind, unavailable = tuple(history)[:4]
    text = '%s failed check%s in a row since %s; the latest: %s' % (
        failures, '' if failures == 1 else 's', when_seconds(since, '?'),
        kind)
    if unavailable:
        text += '; failing long enough to count as unavailable'
    return text + '.'


class URLPage(Page):

    url = None

    def update(self):
        urls = self.utility(IURLProvider)
        key, string = self.text('key'), self.text('url')
        if key.isdigit():
            url = urls.by_id(int(key))
        else:
            url = urls.get_url(string) if string else None
        if url is None:
            self.request.response.setStatus(404)
            return
        self.url = url
        if self.posted('check-now'):
            if gocept.lms.browser.actions.check_now(self.site, [url.id]):
                self.message = 'The URL will be checked at once.'
            else:
                self.message = 'A check of the URL is pending already.'

    def info(self):
        url = self.url
        return dict(
            key=url.id,
            url=url.url,
            state=url.state,
            css=state_class(url.state),
            reason=url.reason,
            last_check=when(url.last_check, 'never'),
            last_state_change=when(url.last_state_change, 'never'),
            history=history_text(url.history),
            new=url.state == UNKNOWN and url.last_check is None,
            clients=[dict(id=client_id, href=self.client_href(client_id))
                     for client_id in sorted(url.clients)])
