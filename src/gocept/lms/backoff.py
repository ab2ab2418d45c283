"""How long to wait before trying a client again after failures in a row.

The notifier (pushes) and the syncer (daily syncs) both wait longer the
longer a client stays down, up to a ceiling.
"""

import datetime


ZERO = datetime.timedelta(0)


def backoff(failures, first, longest):
    """The wait after `failures` failures in a row (timedeltas): `first`
    after one failure, doubled with every further one, at most `longest`;
    nothing before the first failure.

    The number of doublings is bounded by what it takes to reach
    `longest`, never by the count of failures, so the result is the same
    small computation at a thousand failures or a million.
    """
    if failures < 1 or first <= ZERO:
        return ZERO
    if first >= longest:
        return longest
    # 2 ** bit_length(longest // first) * first > longest: more doublings
    # than that cannot change the result.
    doublings = min(failures - 1, (longest // first).bit_length())
    return min(first * 2 ** doublings, longest)
