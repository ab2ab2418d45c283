"""/favicon.ico, which browsers ask for on every first visit.

Without it each visit logged a NotFound with a traceback. The icon is the
ZMI's own (zope.app.rotterdam's favicon.png): a PNG served as favicon.ico,
which every current browser shows.
"""

import importlib.resources


ICON = importlib.resources.files('zope.app.rotterdam').joinpath(
    'favicon.png').read_bytes()


class Favicon:

    def __init__(self, context, request):
        self.context = context
        self.request = request

    def __call__(self):
        response = self.request.response
        response.setHeader('Content-Type', 'image/png')
        response.setHeader('Cache-Control', 'public, max-age=86400')
        return ICON
