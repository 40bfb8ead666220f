"""An FDB entry whose remote goes out of lo (`bridge fdb replace MAC dev flannel.1 dst N2 self permanent via lo`):
the VXLAN driver finds no route to the remote out of the loopback device and drops the frame, counted in
flannel.1's TX errors; tcpdump sees nothing leave the node, nor reach the other one. trace's FDB row said so, but
its walk went on over eth0 to the other node, and the result added "(it went on as it was and was lost in ...)".
The walk now stops at the FDB row (root)."""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, traced, two_node_topology, unique_lab, write_topology
from test_trace_kernel_ways_live import tcpdump

pytestmark = pytest.mark.root


def tx_errors(ns: str) -> int:
    out = in_netns(ns, "ip", "-j", "-s", "link", "show", "flannel.1", check=True).stdout
    return int(json.loads(out)[0]["stats64"]["tx"]["errors"])


def test_an_fdb_entry_via_lo_is_where_the_walk_stops(tmp_path):
    lab = unique_lab("trv")
    path = write_topology(tmp_path, two_node_topology(lab, pods_per_node=1), f"{lab}.yaml")
    with lab_up(path, lab):
        n1, n2 = f"{lab}-minikube", f"{lab}-minikube-m02"
        mac = json.loads(in_netns(n2, "ip", "-j", "link", "show", "flannel.1", check=True).stdout)[0]["address"]
        in_netns(n1, "bridge", "fdb", "replace", mac, "dev", "flannel.1", "dst", "192.168.122.7", "self",
                 "permanent", "via", "lo", check=True)
        before = tx_errors(n1)
        with tcpdump(n1, "eth0", "udp port 8472") as out, tcpdump(n1, "lo", "udp port 8472") as lo, \
                tcpdump(n2, "eth0", "udp port 8472") as there:
            assert in_netns(f"{lab}-fedora-1", "ping", "-c1", "-W1", "10.244.1.3", timeout=10).returncode == 1
        assert tx_errors(n1) - before == 1 and out == [] and lo == [] and there == [], (out, lo, there)
        rc, d = traced(lab, "fedora-1", "fedora-2")
        hops = d["hops"]
        fdb = hops[-1]
        assert rc == 1 and fdb["kind"] == "fdb" and fdb["netns"] == n1, [(h["netns"], h["kind"]) for h in hops]
        assert fdb["facts"]["via"] == "lo" and fdb["facts"]["dropped_here"] is True, fdb["facts"]
        assert not any(h["netns"] == n2 for h in hops), [(h["netns"], h["kind"]) for h in hops]
        lost = d["lost"]
        assert lost["hop"] == fdb["index"] and "went on" not in lost["reason"], lost
        assert "TX errors" in lost["reason"] and lost["fix"].startswith(f"bridge -n {n1} fdb replace {mac} "), lost
