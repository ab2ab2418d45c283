"""Schema evolution of the LMS database (zope.generations).

Generation 1: client passwords are no longer stored in plaintext.
Generation 2: every LMS site has the schedule of URL checks.
Generation 3: every LMS site counts its URLs per state (for monitoring).
Generation 4: the second data model (evolve4.py says what changed).
Generation 5: every LMS site has the change journal of the notifier.
Generation 6: every LMS site has the URL search index and the ring of
recent state changes (the admins' pages). The workers wait for it: a URL
one of them added before the index was built would stay unfindable.
Generation 7: every LMS site's schedule is cut into shards by host, which
checkers lease (several checkers share the work). The workers wait for it:
an old process would write the schedule's old layout.
Generation 8: every LMS site keeps its clients' monitoring figures in one
place (clientfigures.py). The workers wait for it: an old process would
change the figures without copying them.
Generation 9: every LMS site's URL index keeps the URLs of a host together,
and the URL search index finds a host's URLs there (evolve9.py). The
workers wait for it: an old process would write the index's old keys.
"""

import zope.generations.generations


manager = zope.generations.generations.SchemaManager(
    minimum_generation=9,
    generation=9,
    package_name='gocept.lms.generations')


def lms_sites(context):
    """The LMS sites of the database an evolve step works on."""
    import zope.generations.utility
    import gocept.lms.interfaces
    root = zope.generations.utility.getRootFolder(context)
    return [site for site in root.values()
            if gocept.lms.interfaces.ILMS.providedBy(site)]


def each_site(context, step, upgrade_model=False):
    """Run `step(site)` on every LMS site of the database. Steps written
    for the first data model bring a site to the second one first
    (`upgrade_model`, evolve4.py)."""
    for site in lms_sites(context):
        if upgrade_model:
            import gocept.lms.generations.evolve4
            gocept.lms.generations.evolve4.upgrade_model(site)
        step(site)


def add_utility(site, iface, fill):
    """Give `site` the utility `iface` (and any other it lacks), then
    `fill(utility, site manager)` it from what the site holds. Returns
    False when the site had it already: evolve steps may run again."""
    import gocept.lms.app
    sm = site.getSiteManager()
    if sm.queryUtility(iface) is not None:
        return False
    gocept.lms.app.install_missing_utilities(site)
    fill(sm.getUtility(iface), sm)
    return True
