"""What the kernel tells an interrupted probe's agent of the neighbour entries of a lab (probe/neigh_watch.py).

The agent deletes each entry its run's late packets make as the kernel reports it (sweep.py:
Sweeper.sweep_until_quiet); the fake kernel of tests/unit/test_probe_sweep_reports.py stands for this one there.
Here the real kernel: one packet from a pod to another, the ARP exchange in front of it, and the entries it makes
in both pods reported as a late packet's are (REACHABLE in the asker, STALE in the answerer); the agent's own
deletion of one is reported as gone, not as a new entry to delete.
"""

from __future__ import annotations

import os
import socket

from helpers import ipv4_of, wait_for
from netlab.kernel import netlink, rtnl
from netlab.kernel import netns as nsmod
from netlab.probe.neigh_watch import NeighWatch, Reported
from netlab.probe.sockets import NsSockets


def test_the_kernel_reports_the_entries_a_packet_makes_and_a_deletion_as_gone(labs):
    lab = labs.name("qw")
    labs.up(f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n  - {{name: b, node: n1}}\n")
    home = nsmod.current_fd()
    a, b = NsSockets(f"{lab}-a", 0, home, probing=False), NsSockets(f"{lab}-b", 1, home, probing=False)
    watch = NeighWatch({"a": a.neigh_reports(), "b": b.neigh_reports()})
    heard: list[Reported] = []

    def states() -> set[tuple[str, int, bool]]:
        heard.extend(watch.wait(0))
        return {(r.netns, r.entry.state, r.gone) for r in heard}

    try:
        a_ip, b_ip = ipv4_of(f"{lab}-a", "eth0"), ipv4_of(f"{lab}-b", "eth0")
        with a.held:  # a datagram to the discard port: the ARP exchange in front of it is what counts
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(b"late", (b_ip, 9))
        assert wait_for(lambda: {("a", rtnl.NUD_REACHABLE, False), ("b", rtnl.NUD_STALE, False)} <= states(),
                        timeout=10, step=0.01), heard
        assert {r.entry.dst for r in heard if r.netns == "a"} == {b_ip}
        assert {r.entry.dst for r in heard if r.netns == "b"} == {a_ip}
        index = next(r.entry.index for r in heard if r.netns == "a")
        heard.clear()
        a.nl.sock.send(rtnl.neigh_del(index, b_ip))  # as the agent deletes: no ACK asked
        netlink.drain(a.nl.sock)
        assert wait_for(lambda: ("a", rtnl.NUD_FAILED, True) in states() and any(
            r.netns == "a" and r.gone and r.entry.dst == b_ip for r in heard), timeout=10, step=0.01), heard
        assert all(r.gone for r in heard if r.netns == "a"), heard  # nothing new of it to delete again
    finally:
        watch.close()
        a.close()
        b.close()
        os.close(home)
