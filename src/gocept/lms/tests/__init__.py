"""Test support: layers, dummies and helpers shared by the test modules."""

import zope.component
import zope.interface

import gocept.lms.callback
import gocept.lms.interfaces
import gocept.lms.settings


@zope.interface.implementer(gocept.lms.interfaces.ICallbackTransport)
class XMLRPCDummy:
    """Stands in for the clients' callbacks and records what the LMS says.

    `links` maps a callback URL to what its xmlrpc_getAllLinks answers.
    The answer for any other callback holds a duplicate and an invalid
    entry, as real client databases do.
    """

    default_links = [
        'http://example.com/1',
        'http://example.com/3',
        'http://example.com/1',
        'not a URL',
    ]

    def __init__(self):
        self.log = []
        self.links = {}
        self.states = {}
        self.fail = set()

    def connect(self, url, timeout):
        self.log.append('Connect: %s' % url)
        return DummyProxy(self, url)

    def show_log(self):
        for line in self.log:
            print(line)
        del self.log[:]


class DummyProxy:

    def __init__(self, dummy, url):
        self.dummy = dummy
        self.url = url

    def _check(self):
        if self.url in self.dummy.fail:
            raise ConnectionRefusedError(111, 'Connection refused')

    def xmlrpc_getAllLinks(self, client_id, password):
        self._check()
        self.dummy.log.append('Get all links')
        links = self.dummy.links.get(self.url, self.dummy.default_links)
        return list(links) if isinstance(links, list) else links

    def updateManyStates(self, client_id, password, states):
        self._check()
        self.dummy.log.append(
            'Update many states: %s - %s' % (client_id, len(states)))
        self.dummy.states.setdefault(client_id, []).extend(states)
        return True


def install_xmlrpcdummy():
    """Route every callback connection to a fresh XMLRPCDummy."""
    dummy = XMLRPCDummy()
    zope.component.provideUtility(
        dummy, gocept.lms.interfaces.ICallbackTransport)
    return dummy


def uninstall_xmlrpcdummy():
    gsm = zope.component.getGlobalSiteManager()
    dummy = gsm.queryUtility(gocept.lms.interfaces.ICallbackTransport)
    if isinstance(dummy, XMLRPCDummy):
        gsm.unregisterUtility(
            dummy, gocept.lms.interfaces.ICallbackTransport)
        gsm.registerUtility(
            gocept.lms.callback.CallbackTransport(),
            gocept.lms.interfaces.ICallbackTransport)


# Layers

import shutil
import tempfile

import zope.app.appsetup.product
import zope.app.wsgi.testlayer
import zope.component.hooks

import gocept.lms


class FunctionalLayer(zope.app.wsgi.testlayer.BrowserLayer):
    """The application from ftesting.zcml over a fresh DemoStorage per
    test, with product configuration pointing into a temporary directory."""

    product_config = {}

    def setUp(self):
        from gocept.lms.tests import processes
        # The tests, and the processes they start in the checkout, write
        # nothing there: tearDown checks.
        self.checkout = processes.checkout_files()
        self.tmp = tempfile.mkdtemp(prefix='gocept.lms-test-')
        self.config = dict(
            processes.file_settings(self.tmp), **self.product_config)
        zope.app.appsetup.product.setProductConfiguration(
            'gocept.lms', self.config)
        super().setUp()

    def testSetUp(self):
        super().testSetUp()
        # Every test's requests come from 127.0.0.1: none may inherit the
        # failed logins of the tests before it (throttle.py).
        import gocept.lms.throttle
        gocept.lms.throttle.reset()

    def testTearDown(self):
        # Nor leave the throttle's timer running.
        import gocept.lms.throttle
        gocept.lms.throttle.reset()
        super().testTearDown()

    def tearDown(self):
        from gocept.lms.tests import processes
        left = processes.checkout_files() - self.checkout
        try:
            # The ZCML layer cannot be torn down (NotImplementedError)...
            super().tearDown()
        finally:
            zope.app.appsetup.product.setProductConfiguration(
                'gocept.lms', None)
            shutil.rmtree(self.tmp, ignore_errors=True)
            # ... which must not hide what the tests left behind.
            if left:
                raise AssertionError(
                    'The tests left files in the checkout %s: %s' % (
                        processes.CHECKOUT, ', '.join(sorted(left))))


functional_layer = FunctionalLayer(gocept.lms, 'ftesting.zcml')


class PostgreSQLLayer:
    """A PostgreSQL server of its own (pgserver.py, in a temporary
    directory, on a free port of 127.0.0.1) for the tests that run the LMS
    on PostgreSQL: one server for all of them, a database of its own for
    each test (`processes.database`)."""

    __bases__ = (functional_layer,)
    __name__ = 'PostgreSQLLayer'
    __module__ = __name__

    server = None

    @property
    def tmp(self):
        # the base layer's, as the tests in either layer use it
        return functional_layer.tmp

    def setUp(self):
        from gocept.lms.tests import processes
        self.directory = tempfile.mkdtemp(prefix='gocept.lms-postgresql-')
        self.server = processes.postgresql(self.directory)

    def tearDown(self):
        self.server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


postgresql_layer = PostgreSQLLayer()


_saved_config = []


def configure(**settings):
    """Change product settings (`sync_interval=1`) until the test ends."""
    config = functional_layer.config
    if not _saved_config:
        _saved_config.append(dict(config))
    config.update({k.replace('_', '-'): str(v) for k, v in settings.items()})


def key_file():
    """The secret-key-file of the test configuration."""
    return gocept.lms.settings.get().secret_key_file


def restore_configuration():
    if _saved_config:
        functional_layer.config.clear()
        functional_layer.config.update(_saved_config.pop())


_smtp_sinks = []


def start_smtp_server():
    """An SMTP server on 127.0.0.1 that receives the LMS's mails until the
    test ends; `wait_for_messages(n)` returns the messages once n came."""
    from gocept.lms.tests.servers import install_smtp_sink
    sink = install_smtp_sink()
    _smtp_sinks.append(sink)
    return sink


def doctest_teardown(test=None):
    from gocept.lms.tests.servers import uninstall_smtp_sink
    uninstall_xmlrpcdummy()
    restore_configuration()
    while _smtp_sinks:
        uninstall_smtp_sink(_smtp_sinks.pop())
    zope.component.hooks.setSite(None)


def site_setup(root, name='app'):
    """Create an LMS site in the root folder and make it the current site."""
    import gocept.lms.app
    zope.component.hooks.setSite(root)
    root[name] = gocept.lms.app.LMS()
    zope.component.hooks.setSite(root[name])
    return root[name]
