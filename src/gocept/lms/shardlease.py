"""Which checker checks which shard of the schedule.

Every checker process has a `Worker` object in the schedule, its lease:
it renews it every few seconds (`Leases.renew`) and writes nothing else
there, so renewals conflict with no other writer. The `Worker` carries the
checker's figures too (checkerstats.py), which every web process reads.

A shard is leased by naming its checker in `Shard.owner`. Each renewal
also balances: a checker takes free shards up to its fair part (the
shards divided by the live checkers), and gives up what it holds beyond
that. A shard is free when nobody owns it or its owner's lease ran out
(the checker died or stalls); so a dead checker's shards are taken over
one lease after its last renewal, and the URLs it had claimed come due
again when their own (longer) URL lease ends.

Giving a shard up takes two renewals: the first stops claims from it,
the second gives it up once none of its URLs is in flight any more (the
caller says which shards are `busy`). The next checker waits `gap`
seconds (the pacing interval per host) after that, so the last request
the old checker sent to one of its hosts and the first of the new one
are at least that far apart.

schedule.txt and concurrency.txt show what this guarantees and what not.
"""

import math

import persistent


# Workers whose lease ended this long ago are forgotten (their figures
# are shown as down until then).
FORGET_AFTER = 86400.0


class Worker(persistent.Persistent):
    """The lease and the published figures of one checker process."""

    def __init__(self, name, now):
        self.name = name
        self.started = now
        self.expires = now
        self.stats = {}

    def alive(self, now):
        return self.expires > now


def live_workers(schedule, now):
    return [w for w in schedule.workers.values() if w.alive(now)]


class Leases:
    """The shards of one schedule that checker `name` holds.

    Lives in the checker for its whole run (it remembers the shards it is
    giving up); each method runs inside the caller's transaction.
    """

    def __init__(self, name, lease, gap):
        self.name = name
        self.lease = lease
        self.gap = gap
        self.leaving = set()

    def renew(self, schedule, now, busy=(), stats=None):
        """Renew the lease, balance the shards; return the numbers of the
        shards to claim from."""
        workers = schedule.workers
        worker = workers.get(self.name)
        if worker is None:
            worker = workers[self.name] = Worker(self.name, now)
        worker.expires = now + self.lease
        if stats is not None:
            worker.stats = stats
        for name in [w.name for w in workers.values()
                     if w.expires < now - FORGET_AFTER]:
            del workers[name]
        live = {w.name for w in live_workers(schedule, now)}
        fair = math.ceil(len(schedule.shards) / len(live))

        held = []
        for shard in schedule.shards:
            if shard.owner != self.name:
                continue
            if shard.number in self.leaving and shard.number not in busy:
                shard.owner = None
                shard.released, shard.released_by = now, self.name
                continue
            held.append(shard)
        self.leaving.intersection_update(s.number for s in held)
        keep = [s for s in held if s.number not in self.leaving]
        if len(keep) > fair:
            self.leaving.update(s.number for s in keep[fair:])
            keep = keep[:fair]
        for shard in schedule.shards:
            if len(keep) >= fair:
                break
            if self._free(shard, live, now):
                shard.owner = self.name
                keep.append(shard)
        return sorted(s.number for s in keep)

    def _free(self, shard, live, now):
        if shard.owner is None:
            # Given up by another checker: its last requests to the
            # shard's hosts may be just a moment ago.
            return (shard.released_by == self.name
                    or now >= shard.released + self.gap)
        return shard.owner not in live and shard.owner != self.name

    def claimable(self, schedule, numbers, now):
        """Those of the shards `numbers` this checker may claim from now.

        It may not once its own lease ran out (another checker may have
        taken them since). The shards are read with `readCurrent`: if
        another checker takes one over before this transaction commits,
        the commit fails instead of claiming from a shard it lost.
        """
        worker = schedule.workers.get(self.name)
        if worker is None or not worker.alive(now):
            return []
        result = []
        for number in numbers:
            shard = schedule.shards[number]
            if shard.owner == self.name and number not in self.leaving:
                jar = shard._p_jar
                if jar is not None:
                    jar.readCurrent(shard)
                result.append(number)
        return result

    def give_up(self, schedule, now):
        """Give up every shard and end the lease (the checker stops, with
        nothing in flight)."""
        for shard in schedule.shards:
            if shard.owner == self.name:
                shard.owner = None
                shard.released, shard.released_by = now, self.name
        self.leaving.clear()
        worker = schedule.workers.get(self.name)
        if worker is not None:
            worker.expires = now
