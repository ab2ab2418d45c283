from setuptools import setup, find_namespace_packages

setup(
    name='gocept.lms',
    version='4.0.dev0',
    description='Link Monitoring Server: checks the outgoing links of '
                'content sites and reports their states over XML-RPC',
    long_description=open('README.txt').read(),
    author='gocept gmbh & co. kg',
    license='ZPL 2.1',
    python_requires='>=3.11',
    package_dir={'': 'src'},
    # gocept is a native (PEP 420) namespace package
    packages=find_namespace_packages('src', include=['gocept.*']),
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        'setuptools',
        'BTrees',
        'persistent',
        'transaction',
        'ZODB',
        # ZEO's extra for its network loops (server and clients):
        # uvloop, which commits objects faster (benchmarks/RESULTS.md)
        'ZEO[uvloop]',
        # PostgreSQL as the database instead of ZEO (etc/zodb-postgresql.conf)
        'RelStorage[postgresql]',
        'ZConfig',
        'zope.interface',
        'zope.component',
        'zope.schema',
        'zope.event',
        'zope.container',
        'zope.site',
        'zope.location',
        'zope.security',
        'zope.app.appsetup',
        'zope.app.component',
        'zope.app.publisher',
        'zope.app.wsgi',
        'zope.app.zcmlfiles',
        'zope.app.rotterdam',
        'zope.securitypolicy',
        'zope.principalregistry',
        'zope.login',
        'zope.password',
        'zope.generations',
        'zope.sendmail',
        'waitress',
        'aiohttp',
        'cryptography',
        'bcrypt',
        'supervisor',
    ],
    extras_require={
        'test': [
            'zope.testing',
            'zope.testrunner',
            'zope.testbrowser',
            'manuel',
            'webtest',
            'aiosmtpd',
            'pyftpdlib',
            # drives Debian's chromium in test_browser_ui (it never
            # downloads a browser of its own there)
            'playwright',
        ],
    },
    entry_points={
        'console_scripts': [
            'sync = gocept.lms.scripts:sync_main',
            'web = gocept.lms.scripts:web_main',
            'lms = gocept.lms.scripts:lms_main',
            'checker = gocept.lms.scripts:checker_main',
            'notifier = gocept.lms.scripts:notifier_main',
            'mailqueue = gocept.lms.scripts.mailqueue:main',
            'lms-demo = gocept.lms.scripts.demo:main',
            'pgserver = gocept.lms.pgserver:main',
        ],
    },
)
