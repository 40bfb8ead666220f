"""Neighbour entries' flags and proxy entries are drift (root; QA 62k, qa62r): a node's ARP table as a real one
has it holds no proxy entry and no extern_learn flag, and each changes what the node does.

* ``ip neigh add proxy 10.244.0.77 dev cni0`` on a node (forwarding on): the node answers ARP for that address
  on cni0 with its own MAC (a pod's traffic to it goes to the node): an extra entry, up deletes it;
* flanneld's entry for a peer's VTEP rewritten ``extern_learn``, and a hand's ``nud reachable extern_learn``
  entry on cni0 (the kernel never ages an extern_learn entry: it stays as a permanent one does): drift, up
  writes the planned one again (an admin replace clears the flag) and deletes the hand's;
* a VXLAN FDB entry ``dynamic extern_learn`` on flannel.1: kept, not forgotten after the ageing time, and
  status's words say so (they said "the kernel forgets it" and dropped the flag).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import ip_json, lab_up, netlab, sh, status_details, unique_lab, up_repairs, write_topology

pytestmark = pytest.mark.root

TOPO = """name: {name}
network: {{mode: vxlan}}
nodes:
  - {{name: n1, ip: 192.168.122.2, podCIDR: 10.244.0.0/24}}
  - {{name: n2, ip: 192.168.122.3, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - {{name: b, node: n2, ip: 10.244.1.2}}
"""


def _neigh(netns: str, *args: str) -> list[dict]:
    return ip_json("neigh", "show", *args, netns=netns)


def _fdb(netns: str) -> list[dict]:
    """``bridge -j fdb show dev flannel.1``: the kernel's own view of the VXLAN device's entries."""
    out = subprocess.run(["bridge", "-n", netns, "-j", "fdb", "show", "dev", "flannel.1"], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def _said(details: list[dict]) -> list[tuple[str, str, str]]:
    return sorted((d["state"], d["object"], d["detail"]) for d in details)


def test_proxy_entries_and_extern_learn_are_drift_and_up_mends_them(tmp_path):
    name = unique_lab("lbn")
    path = write_topology(tmp_path, TOPO.format(name=name))
    n1 = f"{name}-n1"
    with lab_up(path, name, in_process=True):
        [peer] = [n for n in _neigh(n1, "dev", "flannel.1") if n["dst"] == "10.244.1.0"]
        assert "extern_learn" not in peer and peer["state"] == ["PERMANENT"], peer
        assert _neigh(n1, "proxy") == []

        # 1. a proxy entry: n1 answers ARP for 10.244.0.77 on cni0
        sh("ip", "-n", n1, "neigh", "add", "proxy", "10.244.0.77", "dev", "cni0")
        code, details = status_details(name)
        assert code == 1 and _said(details) == [
            ("extra", f"proxy neighbour 10.244.0.77 dev cni0 in {n1}",
             "the node answers ARP for 10.244.0.77 on cni0 with its own MAC")], details
        assert up_repairs(path, name) == [f"del proxy neighbour 10.244.0.77 dev cni0 in {n1}"]
        assert _neigh(n1, "proxy") == []

        # 2. extern_learn on flanneld's entry, and a hand's extern_learn entry the kernel never ages
        sh("ip", "-n", n1, "neigh", "replace", "10.244.1.0", "lladdr", peer["lladdr"], "dev", "flannel.1",
           "nud", "permanent", "extern_learn")
        sh("ip", "-n", n1, "neigh", "add", "10.244.0.99", "lladdr", "02:00:00:00:00:99", "dev", "cni0",
           "nud", "reachable", "extern_learn")
        code, details = status_details(name)
        assert code == 1 and _said(details) == [
            ("different", f"neighbour 10.244.1.0 lladdr {peer['lladdr']} dev flannel.1 in {n1}",
             "extern_learn (want none)"),
            ("extra", f"neighbour 10.244.0.99 lladdr 02:00:00:00:00:99 dev cni0 extern_learn in {n1}",
             "reachable, extern_learn: the kernel never ages it out")], details
        trace = netlab("trace", "--lab", name, "a", "b", check=False).stdout  # its ARP step says the flag
        assert f"is at {peer['lladdr']} (PERMANENT extern_learn)" in trace, trace
        up_repairs(path, name)
        [peer_now] = [n for n in _neigh(n1, "dev", "flannel.1") if n["dst"] == "10.244.1.0"]
        assert peer_now == peer and not [n for n in _neigh(n1) if n["dst"] == "10.244.0.99"]

        # 3. a VXLAN FDB entry that ages no more: its words keep the flag
        sh("bridge", "-n", n1, "fdb", "add", "02:00:00:00:00:55", "dev", "flannel.1", "dst", "192.168.122.9",
           "self", "dynamic", "extern_learn")
        [entry] = [e for e in _fdb(n1) if e["mac"] == "02:00:00:00:00:55"]
        assert "extern_learn" in entry.get("flags", []), entry
        code, details = status_details(name)
        assert code == 1 and _said(details) == [
            ("extra", f"fdb 02:00:00:00:00:55 dst 192.168.122.9 dev flannel.1 extern_learn in {n1}",
             "dynamic, extern_learn: the kernel never ages it out")], details
        up_repairs(path, name)
        assert not [e for e in _fdb(n1) if e["mac"] == "02:00:00:00:00:55"]

        # 4. a bridge's entry the kernel never ages (learning never sets extern_learn): extra, as a static one
        [port] = [p["ifname"] for p in ip_json("link", "show", "master", "cni0", netns=n1)]
        sh("bridge", "-n", n1, "fdb", "add", "02:00:00:00:00:66", "dev", port, "master", "extern_learn")
        code, details = status_details(name)
        assert code == 1 and _said(details) == [
            ("extra", f"bridge fdb 02:00:00:00:00:66 dev {port} master cni0 dynamic extern_learn in {n1}", "")]
        up_repairs(path, name)
        assert "02:00:00:00:00:66" not in subprocess.run(["bridge", "-n", n1, "fdb", "show", "dev", port],
                                                         capture_output=True, text=True, check=True).stdout

        # 5. flanneld's FDB entry for n2's VTEP made extern_learn: drift, and flanneld's replace clears it
        [vtep] = [e for e in _fdb(n1) if e.get("dst") == "192.168.122.3"]
        sh("bridge", "-n", n1, "fdb", "del", vtep["mac"], "dev", "flannel.1", "dst", "192.168.122.3", "self")
        sh("bridge", "-n", n1, "fdb", "add", vtep["mac"], "dev", "flannel.1", "dst", "192.168.122.3", "self",
           "permanent", "extern_learn")  # (a replace of the entry there clears the flag but never sets it)
        assert [e["flags"] for e in _fdb(n1) if e.get("dst") == "192.168.122.3"] == [["self", "extern_learn"]]
        code, details = status_details(name)
        assert code == 1 and _said(details) == [
            ("different", f"fdb {vtep['mac']} dst 192.168.122.3 dev flannel.1 in {n1}", "extern_learn (want none)")]
        up_repairs(path, name)
        assert [e for e in _fdb(n1) if e.get("dst") == "192.168.122.3"] == [vtep], _fdb(n1)
