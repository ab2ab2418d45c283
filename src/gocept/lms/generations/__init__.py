"""Schema evolution of the LMS database (zope.generations).

Generation 1: client passwords are no longer stored in plaintext.
Generation 2: every LMS site has the schedule of URL checks.
"""

import zope.generations.generations


manager = zope.generations.generations.SchemaManager(
    minimum_generation=2,
    generation=2,
    package_name='gocept.lms.generations')
