"""A bridge port the kernel holds out of forwarding, traced on real labs (root).

A pod's eth0 set down leaves its port on the node's cni0 up but without
carrier, and the kernel disables it (`bridge link`: state disabled); a port
can also be set to that state by hand. The bridge then forwards nothing to or
from it. trace read only whether the port was up: it showed the bridge
flooding or forwarding the frame to the disabled port. Every lab is small and
named hb...; the `labs` fixture takes it down.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from helpers import in_netns, ip, netlab, two_node_topology, wait_for
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def trace(lab: str, *args: str) -> dict:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def port_of(node_ns: str, pod_ns: str) -> dict:
    """The pod's port on the node's cni0, as `bridge -j link` shows it."""
    peer = json.loads(ip("-j", "link", "show", "eth0", netns=pod_ns).stdout)[0]["link_index"]
    ports = json.loads(in_netns(node_ns, "bridge", "-j", "link", "show", check=True).stdout)
    return next(p for p in ports if p["ifindex"] == peer)


def port_disabled(node_ns: str, pod_ns: str, within: float = 5.0) -> dict:
    """The pod's port once the kernel has disabled it. The carrier's loss reaches the bridge through the kernel's
    linkwatch work, asynchronously (up to a second and more on a loaded machine: CI read the port still
    forwarding right after `ip link set eth0 down`); the port as it is at ``within`` seconds otherwise."""
    deadline = time.monotonic() + within
    while True:
        port = port_of(node_ns, pod_ns)
        if port["state"] == "disabled" or time.monotonic() >= deadline:
            return port
        time.sleep(0.05)


def test_a_pods_port_disabled_by_its_eth0_down_gets_nothing_from_the_bridge(labs):
    lab = labs.name("hb")
    labs.up(two_node_topology(lab, pods_per_node=2))
    n2, pod = f"{lab}-minikube-m02", f"{lab}-fedora-2"
    assert in_netns(n2, "ping", "-c1", "-W2", "10.244.1.3").returncode == 0  # the node knows fedora-2's MAC
    ip("link", "set", "eth0", "down", netns=pod)
    port = port_disabled(n2, pod)
    assert port["state"] == "disabled" and "UP" in port["flags"], port  # set up, yet disabled: no carrier
    d = trace(lab, "fedora-1", "fedora-2")
    lost = d["lost"]
    row = d["hops"][lost["hop"] - 1]
    assert (row["netns"], row["device"], row["kind"], row["seen"]) == (n2, port["ifname"], "bridge", False), lost
    assert "it reaches port" not in row["decision"] and row["facts"].get("port_state") == "disabled", row
    assert lost["reason"] == row["problem"]
    assert f"is disabled: eth0 in {pod}, its veth peer, is down, so {port['ifname']} has no carrier" in lost["reason"]
    # The link up alone left the pod without its default and cluster routes (the kernel dropped them with the
    # link, and puts back only the connected one): the fix puts them back too.
    assert lost["fix"] == (f"ip -n {pod} link set eth0 up && ip -n {pod} route add 10.244.0.0/16 via 10.244.1.1 "
                           f"dev eth0 && ip -n {pod} route add default via 10.244.1.1 dev eth0"), lost
    assert not any(h["netns"] == pod for h in d["hops"]), d["hops"]  # it said the frame reached fedora-2's eth0
    # The node's own ARP request dies at the same port: said so, not "nothing on that link answers".
    ip("neigh", "flush", "dev", "cni0", netns=n2)
    lost = trace(lab, "minikube-m02", "fedora-2")["lost"]
    assert lost["reason"].startswith("no ARP answer for 10.244.1.3 on cni0") and \
        f"(veth peer of fedora-2's eth0) is disabled: eth0 in {pod}, its veth peer, is down" in lost["reason"], lost
    subprocess.run(["sh", "-c", lost["fix"]], check=True, timeout=10)  # as a learner pastes it
    port_forwarding = lambda: port_of(n2, pod)["state"] == "forwarding"  # noqa: E731
    assert wait_for(port_forwarding)
    # The node's ARP request for fedora-2 sent while the port was disabled may still be pending: its last probe's
    # timer turns the entry FAILED and drops what queued on it (the ping's "Destination Host Unreachable"), a
    # kernel timing that is not the fix's. The node asks again from scratch.
    ip("neigh", "flush", "dev", "cni0", netns=n2)
    # The kernel's view: real packets both ways (fedora-2's reply needs its route to 10.244.0.0/16 back).
    assert in_netns(f"{lab}-fedora-1", "ping", "-c1", "-W2", "10.244.1.3").returncode == 0
    d = trace(lab, "fedora-1", "fedora-2")
    assert d["delivered"] and d["lost"] is None, d["lost"]


def test_a_port_disabled_by_hand_drops_what_comes_in(labs):
    """`bridge link set dev PORT state disabled` on fedora-1's port: the request dies as it arrives (trace said
    it went up to cni0 and was not seen there, "look at the firewall"), and no reply is traced back through it."""
    lab = labs.name("hb")
    labs.up(two_node_topology(lab, pods_per_node=1))
    n1, pod = f"{lab}-minikube", f"{lab}-fedora-1"
    name = port_of(n1, pod)["ifname"]
    assert in_netns(pod, "ping", "-c1", "-W2", "10.244.0.1").returncode == 0  # fedora-1 knows its gateway's MAC
    in_netns(n1, "bridge", "link", "set", "dev", name, "state", "disabled", check=True)
    d = trace(lab, "fedora-1", "fedora-2")
    lost = d["lost"]
    row = d["hops"][lost["hop"] - 1]
    assert (row["netns"], row["device"], row["kind"], row["seen"]) == (n1, name, "arrive", True), lost
    why = "is in state disabled, not forwarding (set by hand or by STP): the bridge forwards nothing to or from it"
    assert lost["reason"] == f"the bridge port {name} of cni0 in {n1} {why}"
    assert lost["fix"] == f"bridge -n {n1} link set dev {name} state forwarding" and d["reply_hops"] == []
    # The lab's plan holds every port of its bridges forwarding: the text also sends the user to up, which
    # sets it back.
    text = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", check=False, timeout=60).stdout
    [fix] = [line for line in text.splitlines() if line.startswith("  fix: ")]
    assert fix.startswith(f"  fix: bridge -n {n1} link set dev {name} state forwarding   (or: {netlab_command('up')} ") \
        and fix.endswith(", which repairs the lab)"), text
    # Without the gateway's MAC, fedora-1's ARP request is what dies there.
    ip("neigh", "flush", "dev", "eth0", netns=pod)
    lost = trace(lab, "fedora-1", "fedora-2")["lost"]
    assert (lost["netns"], lost["device"]) == (pod, "eth0") and lost["reason"].startswith(
        f"no ARP answer for 10.244.0.1 on eth0 (INCOMPLETE): the bridge port {name} of cni0 in {n1} (veth peer of "
        f"fedora-1's eth0) {why}"), lost
    subprocess.run(lost["fix"].split(), check=True, timeout=10)
    assert port_of(n1, f"{lab}-fedora-1")["state"] == "forwarding"
    assert trace(lab, "fedora-1", "fedora-2")["delivered"]
