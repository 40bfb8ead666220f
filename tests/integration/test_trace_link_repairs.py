"""A link set down, on real labs: trace's printed fix, typed as a learner would, repairs it (real traffic flows).

The kernel removes a link's routes when it is set down and, when it comes up, puts back only its connected routes
(made from its addresses, which stay): a node's eth0 does not get its default route back, nor flannel.1 its routes
to the other nodes' pod CIDRs and their VTEPs' permanent ARP entries; cni0 (only its connected route) does. trace
printed `ip -n NODE link set DEV up` (or, for flannel.1, a route add the kernel refuses while the link is down).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip, links_settled, netlab, wait_for

pytestmark = pytest.mark.root


def trace(lab: str, *args: str) -> dict:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def topology(lab: str) -> str:
    return f"""name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n2}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: example, ip: 203.0.113.10}}]
"""


def apply_fix(lost: dict) -> None:
    """The fix as printed, run as a learner pastes it into a shell."""
    assert lost and lost["fix"], lost
    proc = subprocess.run(["sh", "-c", lost["fix"]], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, (lost["fix"], proc.stderr)


def set_down(netns: str, dev: str) -> None:
    """The fault, as a learner makes it."""
    subprocess.run(["ip", "-n", netns, "link", "set", dev, "down"], check=True)


def pod_ip(netns: str) -> str:
    return json.loads(ip("-j", "addr", "show", "eth0", netns=netns).stdout)[0]["addr_info"][0]["local"]


def pings(netns: str, dst: str) -> bool:
    return in_netns(netns, "ping", "-c1", "-W2", dst).returncode == 0


def test_a_nodes_eth0_then_cni0_set_down_are_repaired_by_the_printed_fix(labs):
    """eth0 down: n1 loses its default route (pod a to the internet dies there); the old fix, the link up, left it
    without one. cni0 down: its connected route comes back with the link, the link up is all the fix."""
    lab = labs.name("qu")
    labs.up(topology(lab))
    b_ip = pod_ip(f"{lab}-b")
    assert pings(f"{lab}-a", "203.0.113.10") and pings(f"{lab}-a", b_ip)
    set_down(f"{lab}-n1", "eth0")
    d = trace(lab, "a", "example")
    lost = d["lost"]
    assert not d["delivered"] and lost["netns"] == f"{lab}-n1" and "eth0 is down there" in lost["reason"], lost
    apply_fix(lost)
    # n1's eth0 is a port of the underlay's bridge: it forwards again on linkwatch's carrier event, after the fix.
    assert wait_for(lambda: links_settled(f"{lab}-n1") and links_settled(f"{lab}-underlay"))
    # The kernel's view: the default route is back, and real packets flow to the internet and to the other node.
    routes = json.loads(ip("-j", "route", "show", "default", netns=f"{lab}-n1").stdout)
    assert [(r["dst"], r.get("gateway"), r["dev"]) for r in routes] == [("default", "192.168.122.1", "eth0")]
    assert pings(f"{lab}-a", "203.0.113.10") and pings(f"{lab}-a", b_ip)
    assert trace(lab, "a", "example")["delivered"]
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert lost["fix"] == (f"ip -n {lab}-n1 link set eth0 up && "
                           f"ip -n {lab}-n1 route add default via 192.168.122.1 dev eth0"), lost

    set_down(f"{lab}-n2", "cni0")
    lost = trace(lab, "a", "b")["lost"]
    # out of n2's eth0 by the default route, lost at its gateway (the internet's): cni0 down is named there as why
    assert lost["netns"] == f"{lab}-gateway" and f"because cni0 in {lab}-n2 is down" in lost["reason"], lost
    assert lost["fix"] == f"ip -n {lab}-n2 link set cni0 up", lost
    apply_fix(lost)
    assert pings(f"{lab}-a", b_ip) and trace(lab, "a", "b")["delivered"]
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_a_nodes_flannel_1_set_down_is_repaired_by_the_printed_fix(labs):
    """flannel.1 down: n1 loses its route to n2's pod CIDR and n2's VTEP's ARP entry, and neither comes back
    with the link; the old fix, that route alone, is refused while the link is down (Nexthop device is not up)."""
    lab = labs.name("qu")
    labs.up(topology(lab))
    b_ip = pod_ip(f"{lab}-b")
    assert pings(f"{lab}-a", b_ip)
    set_down(f"{lab}-n1", "flannel.1")
    d = trace(lab, "a", "b")
    lost = d["lost"]
    assert not d["delivered"] and lost["netns"] == f"{lab}-gateway", lost  # sent there by n1's default route
    apply_fix(lost)
    assert pings(f"{lab}-a", b_ip) and pings(f"{lab}-b", pod_ip(f"{lab}-a"))
    assert trace(lab, "a", "b")["delivered"]
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert "flannel.1 is down, and a link set down loses its routes" in lost["reason"], lost
    assert lost["fix"].startswith(f"ip -n {lab}-n1 link set flannel.1 up && ip -n {lab}-n1 route add 10.244.1.0/24 "
                                  f"via 10.244.1.0 dev flannel.1 onlink && ip -n {lab}-n1 neigh replace 10.244.1.0 "
                                  "lladdr "), lost
