"""Ask the storage for many objects at once instead of one after another.

A process that reads a client's 100,000 states from a fresh cache would
load each BTree bucket in a round trip of its own to the ZEO server (or
PostgreSQL): thousands of them in a row. ZODB's `Connection.prefetch`
sends the requests for many objects together (ZEO and RelStorage answer
them at once; other storages ignore it), and the loads that follow find
the objects in the storage's cache.

For a BTree that means one round trip per level of the tree: the inner
nodes on the way to the wanted keys, then the buckets that hold them.
"""

import bisect


# From how many keys on a read asks the storage for its buckets at once.
PREFETCH_FROM = 50


def prefetch(objects):
    """Prefetch the persistent `objects` that are not loaded yet."""
    ghosts = [ob for ob in objects
              if getattr(ob, '_p_jar', None) is not None
              and ob._p_changed is None]
    if ghosts:
        ghosts[0]._p_jar.prefetch(ghosts)


def prefetch_annotated(objects, keys):
    """Prefetch the `objects`, their annotations and the annotations under
    `keys`: one round trip per layer instead of one per object."""
    objects = list(objects)
    prefetch(objects)
    annotations = [getattr(ob, '__annotations__', {}) for ob in objects]
    prefetch(annotations)
    prefetch([a.get(key) for a in annotations for key in keys])


def prefetch_keys(tree, keys):
    """Prefetch the nodes and buckets of BTree `tree` that hold `keys`."""
    prefetch_trees([(tree, keys)])


def prefetch_whole(tree):
    """Prefetch every node and bucket of BTree `tree`, for a caller that
    reads all of it: one round trip per level instead of one per bucket."""
    prefetch_trees([(tree, None)])


def prefetch_trees(pairs):
    """Prefetch the nodes and buckets that hold `keys` for each
    `(tree, keys)` of `pairs`, all trees together: one round trip per
    level instead of one per tree and level. `keys` None: all of the
    tree."""
    level = [(tree, type(tree), None if keys is None else sorted(keys))
             for tree, keys in pairs
             if getattr(tree, '_p_jar', None) is not None]
    level = [item for item in level if item[2] is None or item[2]]
    while level:
        prefetch([node for node, _, _ in level])
        below = []
        for node, kind, wanted in level:
            if type(node) is not kind:
                continue  # a bucket: the bottom
            state = node.__getstate__()
            if not state or len(state) < 2:
                continue  # empty, or a small tree's one bucket inline
            children, separators = state[0][0::2], state[0][1::2]
            if wanted is None:
                below.extend((child, kind, None) for child in children)
                continue
            routed = {}
            for key in wanted:
                routed.setdefault(
                    bisect.bisect_right(separators, key), []).append(key)
            below.extend((children[i], kind, some)
                         for i, some in routed.items())
        level = below
