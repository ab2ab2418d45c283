"""Benchmark: an authenticated ZMI page with a bcrypt login, with and
without the cache of verified logins (browser/login.py).

Run from the checkout after buildout:  bin/py benchmarks/zmi_login.py

One ZEO server, two bin/web processes on it, both with an admin whose
password is a BCRYPT hash (cost 12, as etc/admin.zcml makes it): one with
`login-cache-seconds 0` (bcrypt on every request, the baseline), one with
the default. The requests alternate between the two, one each per round;
the figure is the time from sending a GET of the site's Overview tab to
the end of the answer, on loopback. Figures go to stdout.
"""

import argparse
import base64
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402
import zmi_pages  # noqa: E402
import gocept.lms.tests.processes  # noqa: E402


ADMIN = ('admin', 'benchmark')



def get(url):
    auth = 'Basic ' + base64.b64encode(('%s:%s' % ADMIN).encode()).decode()
    request = urllib.request.Request(url, headers={'Authorization': auth})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=30)
    args = parser.parse_args()
    import zope.password.password
    hashed = zope.password.password.BCRYPTPasswordManager().encodePassword(
        ADMIN[1]).decode('ascii')
    tmp = tempfile.mkdtemp(prefix='lms-bench-login-')
    processes = []
    try:
        site_zcml = os.path.join(tmp, 'site.zcml')
        with open(site_zcml, 'w') as f:
            f.write(zmi_pages.SITE_ZCML.format(
                site=os.path.join(scale.CHECKOUT, 'etc', 'site.zcml'),
                login=ADMIN[0], password=hashed, manager='BCRYPT'))
        zeo_port = scale.free_port()
        with open(os.path.join(tmp, 'zeo.conf'), 'w') as f:
            f.write(scale.ZEO_CONF.format(
                port=zeo_port, datafs=os.path.join(tmp, 'Data.fs')))
        zeo = subprocess.Popen(
            [os.path.join(scale.BIN, 'runzeo'), '-C',
             os.path.join(tmp, 'zeo.conf')], cwd=tmp,
            stdout=open(os.path.join(tmp, 'zeo.log'), 'wb'),
            stderr=subprocess.STDOUT)
        processes.append(zeo)
        scale.wait_for_port(zeo_port, zeo)
        urls = {}
        for name, seconds in (('bcrypt every request', '0'),
                              ('verified logins kept', '300')):
            directory = os.path.join(tmp, seconds)
            os.mkdir(directory)
            port = scale.free_port()
            conf = gocept.lms.tests.processes.write_zope_conf(
                directory, zeo_port, {
                    'site-name': scale.SITE,
                    'http-address': '127.0.0.1:%d' % port,
                    'public-url': 'http://127.0.0.1:%d/lms/' % port,
                    'secret-key-file': os.path.join(tmp, 'secret.key'),
                    'mail-queue': os.path.join(directory, 'mailqueue'),
                    'check-stats-file': os.path.join(directory, 'stats'),
                    'login-cache-seconds': seconds,
                }, site_zcml)
            web = subprocess.Popen(
                [os.path.join(scale.BIN, 'web'), '-C', conf], cwd=directory,
                stdout=open(os.path.join(directory, 'web.log'), 'wb'),
                stderr=subprocess.STDOUT)
            processes.append(web)
            scale.wait_for_port(port, web)
            urls[name] = 'http://127.0.0.1:%d/lms/@@overview.html' % port
            get(urls[name])  # the first request of a process
        times = {name: [] for name in urls}
        for i in range(args.rounds):
            for name, url in urls.items():
                times[name].append(get(url))
    finally:
        for process in reversed(processes):
            scale.stop(process)
        shutil.rmtree(tmp, ignore_errors=True)

    print('date: %s' % datetime.date.today().isoformat())
    print('machine: %s, %d cores, Python %s, load before: %s' % (
        platform.platform(), os.cpu_count(), platform.python_version(),
        ' '.join('%.2f' % x for x in os.getloadavg())))
    print('%d rounds, one GET of @@overview.html from each web process per '
          'round' % args.rounds)
    medians = {}
    for name, values in times.items():
        values.sort()
        medians[name] = statistics.median(values)
        print('%-22s median %6.1f ms, min %6.1f, max %6.1f' % (
            name, medians[name] * 1000, values[0] * 1000, values[-1] * 1000))
    baseline, contestant = medians.values()
    print('ratio (kept / every request): %.3f' % (contestant / baseline))


if __name__ == '__main__':
    main()
