"""How many running units, in all of a run's workers, hold each neighbour entry.

The workers (worker.py) are processes of their own, but the entries they count
are the kernel's, one per (namespace, device, address): a routed probe from a
pod on node 2 to a pod on node 1 and one from another pod of node 2 to that
same pod both need node 1's entry for it on cni0, and the round-robin share
(agent.py) puts the two units in different workers. A worker that deleted
such an entry when its own last unit was done (budget.py) hit the other's
resolution in its middle: deleting an INCOMPLETE entry fails every packet
queued behind it at once, with an ICMP host unreachable from the node (the
kernel's neigh_invalidate), and the other worker's probe was judged "not
reached" although the pod answers.

So an entry is deleted only when no unit of any worker holds it. The counts
live in one shared mapping (a memfd mapped before the workers fork), changed
under a POSIX record lock on that memfd: a count goes up before the unit's
first packet, and goes down and, at zero, the entry's deletion is sent with
the lock held, so no worker sends between another's reading of zero and its
delete. The kernel drops the lock of a worker that dies holding it.

Only entries that more than one unit names are counted (:meth:`HeldEntries.of_units`): a unit is one worker's
whole, so an entry no other unit names is held by that unit's worker alone, which makes and deletes it as its own,
with no lock (two ``lockf`` calls for each unit's start and end: 5,100 system calls of 50 pods' ICMP run, ~7 ms of
its agent's CPU, where pods on one bridge share no entry).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from typing import Callable, Iterable, Iterator

from netlab.probe.neighbours import Entry
from netlab.probe.tasks import Unit

COUNT = 4  # bytes per count (a C int: memoryview format "i")


class HeldEntries:
    """The run's count of running units per neighbour entry, shared by the workers a fork makes after it."""

    def __init__(self, entries: Iterable[Entry]):
        self.index = {e: i for i, e in enumerate(sorted(set(entries)))}
        self.fd = os.memfd_create("netlab-probe-held", os.MFD_CLOEXEC)
        size = max(1, len(self.index)) * COUNT
        os.ftruncate(self.fd, size)  # a memfd starts as zeros: no unit holds anything
        self._map = mmap.mmap(self.fd, size)  # MAP_SHARED: a forked worker writes the same pages
        self.counts = memoryview(self._map).cast("i")

    @classmethod
    def of_units(cls, units: Iterable[Unit]) -> "HeldEntries":
        """The counts of the entries that more than one of ``units`` names (the others are no one else's)."""
        seen: set[Entry] = set()
        shared: set[Entry] = set()
        for unit in units:
            for e in set(unit.entries):
                if e in seen:
                    shared.add(e)
                else:
                    seen.add(e)
        return cls(shared)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)  # per process: a fork does not inherit it
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def hold(self, entries: Iterable[Entry]) -> None:
        """A unit starts: one more holder of each of its entries (before its first packet)."""
        counted = [i for i in map(self.index.get, entries) if i is not None]
        if not counted:
            return  # no other unit names any of them: nothing to count, no lock to take
        with self._locked():
            for i in counted:
                self.counts[i] += 1

    def release(self, entries: Iterable[Entry], delete: Callable[[Entry], None]) -> None:
        """A unit is done: one holder fewer; ``delete`` each entry no unit of any worker holds now (lock held).
        An entry this run did not count (one no other unit names) is deleted as its worker's own, with no lock."""
        counted = []
        for e in entries:
            i = self.index.get(e)
            if i is None:
                delete(e)
            else:
                counted.append((e, i))
        if not counted:
            return
        with self._locked():
            for e, i in counted:
                left = self.counts[i] - 1
                self.counts[i] = max(0, left)
                if left <= 0:
                    delete(e)

    def close(self) -> None:
        self.counts.release()
        self._map.close()
        os.close(self.fd)
