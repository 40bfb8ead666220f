"""trace --size where a same-node pod's host veth MTU drops the packet (root; QA fx61a 3).

Pod a's host-side veth set to MTU 1300 by hand: a's 1450-byte DF ping to b on the same node is dropped as it
enters that veth (a veth drops a frame bigger than its MTU; no ICMP comes back). The packet crosses only n1's
bridge, unencapsulated: trace said it was 1450 bytes "with its encapsulation" and that "the overlay needs the
underlay's MTU to be the pods' MTU + 50". It says the IP size alone now, and its fix (the plan's MTU) works.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, ip_json, pod_pair_lab, traced

pytestmark = pytest.mark.root


def test_a_same_node_flow_too_big_for_a_host_veth_is_said_without_encapsulation(tmp_path):
    with pod_pair_lab(tmp_path, "fa", same_node=True) as (name, path):
        node = f"{name}-n1"
        rc, d = traced(name, "a", "b", "--size", "1422")
        assert rc == 0, d["lost"]
        b_ip = d["dst"]["ip"]
        (eth0,) = ip_json("link", "show", "eth0", netns=f"{name}-a")
        (veth,) = [x["ifname"] for x in ip_json("link", netns=node) if x["ifindex"] == eth0["link_index"]]
        subprocess.run(["ip", "-n", node, "link", "set", veth, "mtu", "1300"], check=True)
        ping = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", b_ip]
        assert in_netns(f"{name}-a", *ping).returncode != 0
        rc, d = traced(name, "a", "b", "--size", "1422")
        lost = d["lost"]
        assert rc == 1 and lost["netns"] == f"{name}-a", lost  # dropped as it leaves a for the veth
        assert f"the packet is 1450 bytes (IP) but {veth} in {node} takes at most 1300" in lost["reason"], lost
        assert "encapsulation" not in lost["reason"] and "overlay" not in lost["reason"], lost
        subprocess.run(lost["fix"].split("   ")[0].split(), check=True)
        assert in_netns(f"{name}-a", *ping).returncode == 0
