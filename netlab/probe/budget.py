"""A worker's share of the neighbour budget: which entries its running units hold, made and deleted as they go.

The neighbour table is one table for the whole machine (neighbours.py). Each
unit (job.py) names the dynamic entries its packets create. A unit starts
only when the entries it adds fit the worker's share of the run's budget (at
least one unit always runs); entries are reference-counted, and deleted as
soon as no running unit needs them (TCP probes close with RST, so no late
FIN re-creates them). Another worker may hold the same entry (a node's entry
for a pod every source reaches it through): with more than one worker, the
worker's first hold and last release of an entry go through the run's shared
count (held.py), and the entry is deleted only when no worker holds it.
Entries that existed before the run (the snapshot) are never deleted; anything
else the run caused is swept at the end (sweep.py).

Seeded pairs (``--arp seeded``) make PERMANENT entries instead, each side
with the MAC the other pod's eth0 carries, before their first phase, and
delete them after the last: no ARP between the two, and nothing the garbage
collector counts. An entry that exists already (a learner's) is used, never
replaced (NLM_F_EXCL). They stay few: at most SEEDED_MAX pairs per worker.

Requests go out without NLM_F_ACK on the namespace's netlink socket; the
kernel answers only the ones that fail ("exists", "no such entry"), and those
answers are read and dropped at once.
"""

from __future__ import annotations

from typing import Callable

from netlab.kernel import netlink, rtnl
from netlab.probe.held import HeldEntries
from netlab.probe.neighbours import Entry
from netlab.probe.sockets import NsSockets
from netlab.probe.tasks import Unit

SEEDED_MAX = 512  # seeded pairs in flight per worker (their PERMANENT entries are not GC-counted, but stay few)


class Budget:
    """The dynamic entries a worker's running units hold, within ``limit``."""

    def __init__(self, limit: int, snapshot: dict[str, set[tuple[int, str]]], macs: dict[str, bytes | None],
                 sockets: Callable[[str], NsSockets], held: HeldEntries | None = None):
        self.limit = limit
        self.held = held  # the counts all the run's workers share (None: this worker is the run's only one)
        self.snapshot = snapshot  # netns -> (ifindex, ip) of the entries that were there before the run
        self.macs = macs  # pod netns -> its eth0 MAC, for seeded pairs
        self.sockets = sockets  # netns -> its sockets (opened on first use)
        self.live: dict[Entry, int] = {}  # neighbour entry -> running units that need it
        self.seeded = 0  # seeded pairs running
        self.deleted = 0
        self.seeded_total = 0

    def admits(self, unit: Unit) -> bool:
        """The unit's new entries fit (or nothing runs yet), and a seeded pair stays under SEEDED_MAX."""
        new = sum(1 for e in set(unit.entries) if e not in self.live)
        if self.live and len(self.live) + new > self.limit:
            return False
        return not (unit.seed and self.seeded >= SEEDED_MAX)

    def hold(self, unit: Unit) -> None:
        """A unit starts: count its entries, make its seeded ones."""
        first = []  # entries this worker did not hold yet
        for e in set(unit.entries):
            n = self.live[e] = self.live.get(e, 0) + 1
            if n == 1:
                first.append(e)
        if self.held is not None and first:
            self.held.hold(first)
        if unit.seed:
            self.seeded += 1
            self.seeded_total += len(unit.seed)
            for s in unit.seed:
                mac = self.macs.get(s.peer)
                if mac is None:
                    continue  # no MAC known: this pair resolves by ARP after all
                ns = self.sockets(s.netns)
                idx = ns.index(s.ifname)
                if idx is not None:
                    ns.nl.sock.send(rtnl.neigh_add(idx, s.ip, mac.hex(":")))
                    netlink.drain(ns.nl.sock)

    def release(self, unit: Unit) -> None:
        """A unit is done: remove its seeded entries, and every counted entry no running unit needs."""
        if unit.seed:
            self.seeded -= 1
            for s in unit.seed:
                self._delete(Entry(s.netns, s.ifname, s.ip))
        last = []  # entries no other unit of this worker needs
        for e in set(unit.entries):
            left = self.live.get(e, 1) - 1
            if left > 0:
                self.live[e] = left
            else:
                self.live.pop(e, None)
                last.append(e)
        if self.held is not None:
            if last:
                self.held.release(last, self._delete)
        else:
            for e in last:
                self._delete(e)

    def _delete(self, entry: Entry) -> None:
        try:
            ns = self.sockets(entry.netns)
        except OSError:
            return
        idx = ns.index(entry.ifname)
        if idx is None or (idx, entry.ip) in self.snapshot.get(entry.netns, ()):
            return  # the entry was there before the run: not ours to delete
        try:
            ns.nl.sock.send(rtnl.neigh_del(idx, entry.ip))
            self.deleted += 1
        except OSError:
            pass
        netlink.drain(ns.nl.sock)
