"""cni0 comes with a node's first pod and stays after its last, as the CNI bridge plugin does (root; QA fl59 9).

A node with no pod had cni0 (10.244.X.1/24, and its connected route) from the start; on a real Flannel node the
bridge plugin makes cni0 at the first pod's ADD, and no DEL deletes it. Now n2, without a pod, has no cni0 while
the lab probes clean; a pod added by up brings cni0 (its address, its route) and works; the pod taken out by up
leaves cni0 with its address (and the kernel's MTU of a bridge without a port, 1500), up says nothing of it, and
status says all as planned.
"""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = "name: {name}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n  - {{name: a, node: n1}}\n{more}"


def links(netns: str) -> set[str]:
    return {link["ifname"] for link in ip_json("link", "show", netns=netns)}


def test_cni0_comes_with_the_first_pod_and_stays(tmp_path):
    name = unique_lab("fb")
    path = write_topology(tmp_path, TOPO.format(name=name, more=""))
    n2 = f"{name}-n2"
    with lab_up(path, name, in_process=True):
        assert "cni0" not in links(n2) and "cni0" in links(f"{name}-n1")
        assert not [r for r in ip_json("route", "show", netns=n2) if r.get("dev") == "cni0"]
        nodes = json.loads(netlab("get", "nodes", "--lab", name, "-o", "json").stdout)["items"]
        assert {n["name"]: n["cni0"] for n in nodes}["n2"] is None, nodes
        probe = netlab("probe", "--lab", name, check=False)
        assert probe.returncode == 0, probe.stdout
        # a pod on n2: cni0 comes with it
        write_topology(tmp_path, TOPO.format(name=name, more="  - {name: b, node: n2}\n"))
        netlab("up", "-t", path)
        [cni0] = ip_json("addr", "show", "dev", "cni0", netns=n2)
        gateway = next(a["local"] for a in cni0["addr_info"] if a["family"] == "inet")
        assert gateway.endswith(".1") and netlab("probe", "--lab", name, check=False).returncode == 0
        # the pod taken out: its veth goes, cni0 and its address stay, as the bridge plugin's DEL leaves them
        write_topology(tmp_path, TOPO.format(name=name, more=""))
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert not any("cni0" in line for line in out["fixed"]), out["fixed"]
        [after] = ip_json("addr", "show", "dev", "cni0", netns=n2)
        assert [a["local"] for a in after["addr_info"] if a["family"] == "inet"] == [gateway]
        assert after["mtu"] == 1500, after  # the kernel's for a bridge without a port (the plugin set none by hand)
        assert netlab("status", "--lab", name, check=False).returncode == 0
