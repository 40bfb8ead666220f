"""`up --watch` hears the kernel's local-table routes change (root): a node's or a pod's `ip route del local ...
table local`, or a hand's `ip route add local ... table local`, is mended at once, as a main-table route's change is
(closing61's left item: the listener dropped every local-table notification as the kernel's own, so only the
periodic check, `--resync` seconds later, mended such a change; here it is 60 s, past the bound).
"""

from __future__ import annotations

import pytest

from helpers import ip, ip_json, ipv4_of, unique_lab, write_topology
from watching import as_planned, wait_until, watching

pytestmark = pytest.mark.root

TOPO = "name: {name}\nnodes: [{{name: node-1}}]\npods: [{{name: a, node: node-1}}]\n"


def _local(netns: str, dst: str) -> list[dict]:
    return [r for r in ip_json("route", "show", "table", "local", netns=netns) if r["dst"] == dst]


def test_local_table_routes_changed_by_hand_are_heard_and_mended_at_once(tmp_path):
    name = unique_lab("lwl")
    path = write_topology(tmp_path, TOPO.format(name=name))
    node, pod = f"{name}-node-1", f"{name}-a"
    with watching(name) as start:
        watcher = start(path, resync="60")  # the periodic check cannot explain a repair within the bounds below
        [gateway] = _local(node, "10.244.0.1")
        mine = ipv4_of(pod, "eth0")
        [own] = _local(pod, mine)

        # the pods' gateway: its local route deleted (no ARP answer for it)
        mark = len(watcher.lines)
        ip("route", "del", "local", "10.244.0.1", "dev", "cni0", "table", "local", netns=node)
        line = watcher.wait_for_event(f"route local 10.244.0.1/32 table local deleted in {node}", after=mark,
                                      timeout=5)
        assert "route local 10.244.0.1/32 dev cni0 table local" in line.split("; did: ", 1)[1], line
        wait_until(lambda: _local(node, "10.244.0.1") == [gateway], 5.0)

        # the pod's own address's
        mark = len(watcher.lines)
        ip("route", "del", "local", mine, "dev", "eth0", "table", "local", netns=pod)
        line = watcher.wait_for_event(f"route local {mine}/32 table local deleted in {pod}", after=mark, timeout=5)
        wait_until(lambda: _local(pod, mine) == [own], 5.0)

        # a hand's: the node takes another prefix's packets for its own
        mark = len(watcher.lines)
        ip("route", "add", "local", "10.244.9.0/24", "dev", "lo", "table", "local", netns=node)
        line = watcher.wait_for_event(f"route local 10.244.9.0/24 table local added in {node}", after=mark,
                                      timeout=5)
        assert "del route local 10.244.9.0/24 dev lo" in line, line
        wait_until(lambda: not _local(node, "10.244.9.0/24"), 5.0)

        # an address deleted takes its local and broadcast routes: its own notification says it, theirs are not
        # said again
        mark = len(watcher.lines)
        ip("addr", "del", "10.244.0.1/24", "dev", "cni0", netns=node)
        line = watcher.wait_for_event(f"address 10.244.0.1/24 deleted in {node}", after=mark, timeout=5)
        saw = line.split("; did: ", 1)[0]  # (the watcher's own deletion of the hand's route may be heard in it)
        assert "10.244.0.1/32 table local" not in saw and "10.244.0.255" not in saw, line
        wait_until(lambda: _local(node, "10.244.0.1") == [gateway], 5.0)
        wait_until(lambda: as_planned(name), 10.0, step=0.2)
        print("\n".join(watcher.lines))
