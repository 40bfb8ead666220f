"""What an interrupted probe's agent hears while it clears the neighbour entries its run made (sweep.py).

A sweep reads a namespace's neighbour table at one moment. A packet of the run
still in one of the kernel's queues when the agent stopped (a loaded machine
runs the veths' receive work late: the packets wait in the CPUs' backlogs) is
delivered after that moment; its answer needs its neighbour again, and the ARP
exchange in front of it leaves an entry in each pod: REACHABLE in the one that
asked, STALE in the one that answered. A sweep that came before it cannot see
it, and one that comes after it may come too late (the parent's SIGKILL ends
the agent's grace). So the agent joins each swept namespace's neighbour group
(RTNLGRP_NEIGH, what ``ip monitor neigh`` hears) before its first sweep: the
kernel reports each entry the run's late packets make, in any namespace, as it
makes it, and the agent deletes it then, with no look at the others.

The kernel also shows what is still to come: the packets waiting in each
CPU's backlog (/proc/net/softnet_stat, :func:`backlog`), which the veths'
receive work has not run on yet. The agent ends once these are empty, the
lab's servers hold no request of the run (sockets.NsSockets.waiting), and
nothing of the run was reported for a while.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from netlab.kernel import fdwait, netlink, rtnl, rtnl_parse

RTNLGRP_NEIGH = 3  # linux/rtnetlink.h: the neighbour entries' notifications
SOFTNET_STAT = "/proc/net/softnet_stat"
BACKLOG_FIELD = 11  # a CPU's line: the packets in its input and process queues (Linux 5.10 on: 13 fields and more)
REPORTS_BUFFER = 1 << 20  # bytes: a first sweep's deletions are reported too (hundreds of entries)


@dataclass(frozen=True)
class Reported:
    """An entry the kernel made or changed in namespace ``netns`` (``gone``: deleted, or being deleted as a
    process asked)."""

    netns: str
    entry: rtnl_parse.NeighMsg
    gone: bool = False


class NeighWatch:
    """Sockets that hear the neighbour entries of some namespaces change, each opened in its namespace."""

    def __init__(self, opened: dict[str, socket.socket]):
        self._socks = {s.fileno(): (name, s) for name, s in opened.items()}
        self.lost = False  # a full receive buffer dropped reports: only a sweep knows what came

    def wait(self, timeout: float) -> list[Reported]:
        """What the kernel reported, once something was, or after ``timeout`` s (0: what is queued now)."""
        if not self._socks:  # nothing to hear (every namespace gone): the wait is still a wait, not a spin
            time.sleep(max(0.0, timeout))
            return []
        try:
            ready = fdwait.ready(list(self._socks), timeout)  # a 500-pod run holds descriptors past 1023
        except InterruptedError:
            return []
        out: list[Reported] = []
        for fd in ready:
            out += self._read(fd)
        return out

    def _read(self, fd: int) -> list[Reported]:
        name, sock = self._socks[fd]
        out: list[Reported] = []
        for data in netlink.queued(sock):
            if data is None:
                self.lost = True
                continue
            off = 0
            for m in netlink.split(data):
                pid = netlink.HDR.unpack_from(data, off)[4]  # the asker's port: 0 for the kernel's own change
                off += (16 + len(m.body) + 3) & ~3
                if m.mtype not in (rtnl.RTM_NEWNEIGH, rtnl.RTM_DELNEIGH):
                    continue
                n = rtnl_parse.parse_neigh(m)
                if n.family != socket.AF_INET or n.dst is None:
                    continue
                # A deletion asked for (the agent's) is reported twice: the entry FAILED, then deleted.
                gone = m.mtype == rtnl.RTM_DELNEIGH or bool(pid and n.state & rtnl.NUD_FAILED)
                out.append(Reported(name, n, gone))
        return out

    def close(self) -> None:
        for _, sock in self._socks.values():
            sock.close()
        self._socks.clear()

    def __enter__(self) -> "NeighWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def neigh_socket() -> socket.socket:
    """A socket, in the calling thread's namespace, that the kernel tells each change of a neighbour entry."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, netlink.NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, netlink.SO_RCVBUFFORCE, REPORTS_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, REPORTS_BUFFER)
    sock.bind((0, 1 << (RTNLGRP_NEIGH - 1)))
    return sock


def backlog(path: str = SOFTNET_STAT) -> int:
    """The packets waiting in the CPUs' receive backlogs, machine-wide (a veth's packet waits there for its
    peer's receive work); 0 when this kernel does not count them."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    total = 0
    for line in lines:
        fields = line.split()
        if len(fields) > BACKLOG_FIELD + 1:
            total += int(fields[BACKLOG_FIELD], 16)
    return total
