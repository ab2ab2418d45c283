"""Schema evolution of the LMS database (zope.generations).

Generation 1: client passwords are no longer stored in plaintext.
Generation 2: every LMS site has the schedule of URL checks.
Generation 3: every LMS site counts its URLs per state (for monitoring).
Generation 4: the second data model (evolve4.py says what changed).
Generation 5: every LMS site has the change journal of the notifier.
"""

import zope.generations.generations


manager = zope.generations.generations.SchemaManager(
    minimum_generation=4,
    generation=5,
    package_name='gocept.lms.generations')


def lms_sites(context):
    """The LMS sites of the database an evolve step works on."""
    import zope.generations.utility
    import gocept.lms.interfaces
    root = zope.generations.utility.getRootFolder(context)
    return [site for site in root.values()
            if gocept.lms.interfaces.ILMS.providedBy(site)]
