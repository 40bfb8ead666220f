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
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from typing import Callable, Iterable, Iterator

from netlab.probe.neighbours import Entry

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

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)  # per process: a fork does not inherit it
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def hold(self, entries: Iterable[Entry]) -> None:
        """A unit starts: one more holder of each of its entries (before its first packet)."""
        with self._locked():
            for e in entries:
                i = self.index.get(e)
                if i is not None:
                    self.counts[i] += 1

    def release(self, entries: Iterable[Entry], delete: Callable[[Entry], None]) -> None:
        """A unit is done: one holder fewer; ``delete`` each entry no unit of any worker holds now (lock held).
        An entry this run did not count (none such is made) is deleted as its worker's own."""
        with self._locked():
            for e in entries:
                i = self.index.get(e)
                if i is None:
                    delete(e)
                    continue
                left = self.counts[i] - 1
                self.counts[i] = max(0, left)
                if left <= 0:
                    delete(e)

    def close(self) -> None:
        self.counts.release()
        self._map.close()
        os.close(self.fd)
