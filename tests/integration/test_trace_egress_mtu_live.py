"""trace --size where a router's egress device MTU drops the packet (root; QA im60 2).

n1's flannel.1 (or n2's cni0) set to MTU 1300 by hand: the node drops a pod's bigger DF packet as it forwards it
and answers an ICMP fragmentation needed. trace said "route, ARP and FDB answers look right, so look at the
firewall"; it now names the device, its MTU and the plan's, and its fix (the plan's MTU) makes the packet go.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, ip_json, pod_pair_lab, traced

pytestmark = pytest.mark.root


def big_ping(pod: str, dst: str) -> int:
    """`ping -M do -s 1372` (1400 bytes of IP, DF) from ``pod``: its exit code."""
    return in_netns(pod, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1372", dst).returncode


def port_of(node: str) -> str:
    """n2's one bridge port (pod b's veth)."""
    out = subprocess.run(["ip", "-n", node, "-o", "link", "show", "master", "cni0"], capture_output=True, text=True,
                         check=True).stdout
    return out.split(":")[1].strip().split("@")[0]


@pytest.mark.parametrize("where", [("n1", "flannel.1"), ("n2", "cni0"), ("n2", "port")])
def test_a_node_device_whose_mtu_was_lowered_is_named_and_its_fix_works(tmp_path, where):
    with pod_pair_lab(tmp_path, "im") as (name, path):
        node, dev = f"{name}-{where[0]}", where[1]
        pod = f"{name}-a"
        rc, d = traced(name, "a", "b", "--size", "1372")
        assert rc == 0, d["lost"]
        b_ip = d["dst"]["ip"]
        port = port_of(node) if dev == "port" else None
        subprocess.run(["ip", "-n", node, "link", "set", port or dev, "mtu", "1300"], check=True)
        dev = "cni0" if port else dev  # the kernel gives a bridge its smallest port's MTU: cni0 is 1300 too
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        assert big_ping(pod, b_ip) != 0  # the kernel's view: the node drops it
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        rc, d = traced(name, "a", "b", "--size", "1372")
        assert rc == 1
        lost = d["hops"][d["lost"]["hop"] - 1]
        assert (lost["netns"], lost["device"]) == (node, dev), d["lost"]
        reason = d["lost"]["reason"]
        assert "firewall" not in reason and f"{dev} in {node}" in reason and "MTU 1300 (the plan says 1450)" \
            in reason and "fragmentation needed" in reason, reason
        assert d["lost"]["fix"].startswith(f"ip -n {node} link set {port or dev} mtu 1450"), d["lost"]["fix"]
        if port:
            assert f"its port {port} has MTU 1300 (the plan says 1450)" in reason, reason
        subprocess.run(["sh", "-c", d["lost"]["fix"].split("   ")[0]], check=True)  # as a learner pastes it
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        assert big_ping(pod, b_ip) == 0
        rc, d = traced(name, "a", "b", "--size", "1372")
        assert rc == 0, d["lost"]


def test_a_bridge_mtu_set_by_hand_and_a_lowered_port_are_both_named_and_the_fix_works(tmp_path):
    """`ip link set cni0 mtu 1350`, then b's veth to 1300: the kernel keeps the MTU set by hand (cni0 stays 1350,
    `ip -j link` shows), so the fix that set the port alone left the node dropping the packet."""
    with pod_pair_lab(tmp_path, "im") as (name, path):
        node, pod = f"{name}-n2", f"{name}-a"
        rc, d = traced(name, "a", "b", "--size", "1372")
        assert rc == 0, d["lost"]
        b_ip, port = d["dst"]["ip"], port_of(node)
        subprocess.run(["ip", "-n", node, "link", "set", "cni0", "mtu", "1350"], check=True)
        subprocess.run(["ip", "-n", node, "link", "set", port, "mtu", "1300"], check=True)
        assert [x["mtu"] for x in ip_json("link", "show", "cni0", netns=node)] == [1350]  # not its port's 1300
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        assert big_ping(pod, b_ip) != 0
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        rc, d = traced(name, "a", "b", "--size", "1372")
        lost = d["hops"][d["lost"]["hop"] - 1]
        assert rc == 1 and (lost["netns"], lost["device"]) == (node, "cni0"), d["lost"]
        assert f"its port {port} has MTU 1300 (the plan says 1450), and cni0's own MTU was set by hand" \
            in d["lost"]["reason"], d["lost"]["reason"]
        fix = d["lost"]["fix"]
        assert fix == f"ip -n {node} link set {port} mtu 1450 && ip -n {node} link set cni0 mtu 1450", fix
        subprocess.run(["sh", "-c", fix], check=True)  # as a learner pastes it
        assert [x["mtu"] for x in ip_json("link", "show", "cni0", netns=node)] == [1450]
        subprocess.run(["ip", "-n", pod, "route", "flush", "cache"], check=True)
        assert big_ping(pod, b_ip) == 0
        rc, d = traced(name, "a", "b", "--size", "1372")
        assert rc == 0, d["lost"]
