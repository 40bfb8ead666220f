"""cni0 comes with a node's first pod and stays after its last, as the CNI bridge plugin does (root; QA fl59 9).

A node with no pod had cni0 (10.244.X.1/24, and its connected route) from the start; on a real Flannel node the
bridge plugin makes cni0 at the first pod's ADD, and no DEL deletes it. Now n2, without a pod, has no cni0 while
the lab probes clean; a pod added by up brings cni0 (its address, its route) and works; the pod taken out by up
leaves cni0 with its address (and the kernel's MTU of a bridge without a port, 1500), up says nothing of it, and
status says all as planned.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import ip_json, lab_namespaces, lab_up, netlab, unique_lab, write_topology

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


# pyroute2 in a process of its own (test_repair_line_state_dir_live.py's way): its NetNS forks a child that enters
# the namespace, and a fork of pytest's process runs pytest's exit hooks there; flags 0: it makes no namespace.
ADD_BRIDGE = """
import sys
from pyroute2 import NetNS
with NetNS(sys.argv[1], flags=0) as ns:
    ns.link("add", ifname="cni0", kind="bridge")
"""
TOPO_CIDRS = ("name: {name}\nnodes: [{{name: n1, podCIDR: 10.244.0.0/24}}, {{name: n2, podCIDR: 10.244.1.0/24}}]\n"
              "pods:\n  - {{name: a, node: n1}}\n{more}")


def test_a_podless_node_s_answers_drift_and_its_kept_cni0_taking_a_pod_again(tmp_path):
    """n2, no pod yet: impair lists no n2:cni0 and refuses it, trace refuses its would-be cni0 address (exit 2,
    one line each); a cni0 made there by hand is drift (extra) that up deletes. Once n2 had a pod and lost it, its
    kept cni0 (at 1500, no port) takes the next pod's veth: the kernel gives it the pod's MTU again, up sets
    nothing of cni0, and the lab probes clean."""
    name = unique_lab("fb")
    path = write_topology(tmp_path, TOPO_CIDRS.format(name=name, more=""))
    n2 = f"{name}-n2"
    with lab_up(path, name, in_process=True):
        listed = json.loads(netlab("impair", "--lab", name, "-o", "json").stdout)["impairments"]
        assert listed == [], listed
        for args in (("impair", "--lab", name, "n2:cni0"), ("impair", "--lab", name, "n2:cni0", "--clear"),
                     ("impair", "--lab", name, "n2:cni0", "--rate", "10mbit")):
            out = netlab(*args, check=False)
            assert out.returncode == 2 and out.stderr.startswith("netlab: n2 has no cni0: no pod ran there yet"), out
        out = netlab("trace", "--lab", name, "a", "10.244.1.1", check=False)
        assert out.returncode == 2 and out.stderr.startswith(
            "netlab: 10.244.1.1 is the cni0 address node n2 would have, but n2 has no cni0"), out
        # a cni0 made by hand where the plan has none: drift, which up deletes
        subprocess.run([sys.executable, "-c", ADD_BRIDGE, n2], check=True, timeout=30)
        status = netlab("status", "--lab", name, check=False)
        assert status.returncode == 1 and f"extra: link cni0 in {n2}" in status.stdout, status.stdout
        netlab("up", "--lab", name)
        assert "cni0" not in links(n2) and netlab("status", "--lab", name, check=False).returncode == 0
        # a pod comes and goes: cni0 stays at 1500, the kernel's without a port; the next pod's veth brings 1450
        with_b = TOPO_CIDRS.format(name=name, more="  - {name: b, node: n2}\n")
        for text, mtu, made in ((with_b, 1450, True), (TOPO_CIDRS.format(name=name, more=""), 1500, False),
                                (with_b, 1450, False)):
            write_topology(tmp_path, text)
            out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
            assert (f"add link cni0 in {n2}" in out["fixed"]) == made, out["fixed"]
            assert not [line for line in out["fixed"] if line.startswith("set ") and " link cni0 " in line], out
            [cni0] = ip_json("link", "show", "cni0", netns=n2)
            assert cni0["mtu"] == mtu, (mtu, cni0)
            assert netlab("status", "--lab", name, check=False).returncode == 0
        assert netlab("probe", "--lab", name, check=False).returncode == 0
    assert not lab_namespaces(name)


def test_reference_mode_leaves_the_plugins_cni0_at_1500_after_a_nodes_last_pod(tmp_path):
    """network.cni: reference (Debian's bridge plugin makes cni0 at 1450, not set by hand): its last pod's DEL
    leaves cni0 without a port, at the kernel's 1500 (br_mtu_auto_adjust), and netlab leaves it there (QA qa60k:
    it set 1450 again, and so marked the MTU set by hand); the next pod's veth brings 1450 back, twice over."""
    name = unique_lab("ld")
    ref = "name: {name}\nnetwork: {{mode: vxlan, cni: reference}}\n" + TOPO_CIDRS.split("\n", 1)[1]
    path = write_topology(tmp_path, ref.format(name=name, more=""))
    n2 = f"{name}-n2"
    with lab_up(path, name, in_process=True):
        for more, mtu in (("  - {name: b, node: n2}\n", 1450), ("", 1500), ("  - {name: b, node: n2}\n", 1450),
                          ("", 1500)):
            write_topology(tmp_path, ref.format(name=name, more=more))
            out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
            assert not [line for line in out["fixed"] if line.startswith("set ") and " link cni0 " in line], out
            [cni0] = ip_json("link", "show", "cni0", netns=n2)
            assert cni0["mtu"] == mtu, (more, cni0)
            assert netlab("status", "--lab", name, check=False).returncode == 0
            again = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
            assert again["fixed"] == [] and ip_json("link", "show", "cni0", netns=n2)[0]["mtu"] == mtu, again
        assert netlab("probe", "--lab", name, check=False).returncode == 0
    assert not lab_namespaces(name)
