"""Schema evolution of the LMS database (zope.generations).

Generation 1: client passwords are no longer stored in plaintext.
"""

import zope.generations.generations


manager = zope.generations.generations.SchemaManager(
    minimum_generation=1,
    generation=1,
    package_name='gocept.lms.generations')
