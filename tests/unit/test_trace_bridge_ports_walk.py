"""A bridge port the kernel holds out of forwarding, as the trace reads it (no root; the fake kernel of
test_trace_walk).

A bridge sends a frame out of a port, and takes one in, only in state
forwarding (``bridge link`` shows it). The kernel disables a port that has no
carrier, as a pod's port does once the pod's eth0 is down, although the port
itself is up; a user (or STP) may set another state. The trace read only
whether the port was up, and showed a disabled port as the one the bridge
floods or forwards the frame to.
"""

from __future__ import annotations

from dataclasses import replace

from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_walk import ping, world  # noqa: F401  (the fixture)


def set_port(k, netns: str, port: str, state: str) -> None:
    k._links[netns][port] = replace(k._links[netns][port], port_state=state)


def test_a_port_without_carrier_gets_nothing_from_the_bridge(world):  # noqa: F811
    lab, m, k = world
    port2 = lab.pod("fedora-2").host_veth
    k.down.add(("demo-fedora-2", "eth0"))  # ip -n demo-fedora-2 link set eth0 down: its node's port is disabled
    set_port(k, "demo-minikube-m02", port2, "disabled")
    w = ping(k, m)
    assert w.outcome == "stopped"
    last = w.hops[-1]
    assert (last.netns, last.device, last.kind) == ("demo-minikube-m02", port2, "bridge")
    # The FDB still names the port (the fake keeps the entry the kernel flushes), but nothing leaves by it.
    assert f"is behind port {port2} (learned), but the bridge sends nothing out of {port2}" in last.decision
    assert last.problem == (f"the bridge port {port2} of cni0 in demo-minikube-m02 (veth peer: eth0 in demo-fedora-2) "
                            f"is disabled: eth0 in demo-fedora-2, its veth peer, is down, so {port2} has no carrier, "
                            "and the bridge forwards nothing to or from a port without carrier")
    # The link up, and the routes the kernel took with it (the link up alone left the pod without them).
    assert last.fix == ("ip -n demo-fedora-2 link set eth0 up && ip -n demo-fedora-2 route add 10.244.0.0/16 via "
                        "10.244.1.1 dev eth0 && ip -n demo-fedora-2 route add default via 10.244.1.1 dev eth0")
    assert last.facts["port_state"] == "disabled"
    assert f"bridge -n demo-minikube-m02 link show dev {port2}" in last.commands
    assert not any(h.netns == "demo-fedora-2" for h in w.hops)  # it said the frame went on and died there
    # Flooded (no FDB entry: the kernel flushed the port's when it disabled it): the flood skips the port.
    fdb = k.fdb
    k.fdb = lambda ns: [e for e in fdb(ns) if e.dev != port2]
    last = ping(k, m).hops[-1]
    assert last.decision.startswith(f"bridge cni0: {lab.pod('fedora-2').mac} is not in the FDB: the bridge floods "
                                    f"the frame to its forwarding ports, and {port2}, the port")
    assert "it reaches port" not in last.decision and last.problem.endswith("a port without carrier")


def test_a_port_in_another_state_drops_what_comes_in_and_sends_nothing_out(world):  # noqa: F811
    lab, m, k = world
    port1 = lab.pod("fedora-1").host_veth
    set_port(k, "demo-minikube", port1, "disabled")  # bridge link set dev PORT state disabled
    why = (f"the bridge port {port1} of cni0 in demo-minikube is in state disabled, not forwarding (set by hand or by "
           "STP): the bridge forwards nothing to or from it")
    fix = f"bridge -n demo-minikube link set dev {port1} state forwarding"
    # The request comes in by it: dropped as it arrives.
    w = ping(k, m)
    last = w.hops[-1]
    assert w.outcome == "stopped" and (last.netns, last.device, last.kind) == ("demo-minikube", port1, "arrive")
    assert (last.problem, last.fix) == (why, fix) and last.observe is not None  # a capture sees it arrive
    # A reply towards fedora-1 goes out by it: not sent.
    back = walk(k, m, "demo-fedora-2", Flow.icmp("10.244.1.3", "10.244.0.2", 7), role="reply", direction="reply")
    last = back.hops[-1]
    assert back.outcome == "stopped" and (last.netns, last.device, last.kind) == ("demo-minikube", port1, "bridge")
    assert last.problem.startswith(f"the bridge port {port1} of cni0 in demo-minikube (veth peer: eth0 in "
                                   "demo-fedora-1) is in state disabled, not forwarding") and last.fix == fix
    assert "but the bridge sends nothing out of" in last.decision and last.direction == "reply"


def test_an_arp_request_that_dies_at_a_disabled_port_says_so(world):  # noqa: F811
    lab, m, k = world
    port3 = lab.pod("fedora-3").host_veth
    k.down.add(("demo-fedora-3", "eth0"))
    set_port(k, "demo-minikube", port3, "disabled")
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    last = ping(k, m, dst="10.244.0.3").hops[-1]
    assert (last.netns, last.kind) == ("demo-fedora-1", "neigh")
    assert last.problem == (f"no ARP answer for 10.244.0.3 on eth0 (INCOMPLETE): the bridge port {port3} of cni0 in "
                            "demo-minikube (veth peer of fedora-3's eth0) is disabled: eth0 in demo-fedora-3, its "
                            f"veth peer, is down, so {port3} has no carrier, and the bridge forwards nothing to or "
                            "from a port without carrier")
    assert last.fix == ("ip -n demo-fedora-3 link set eth0 up && ip -n demo-fedora-3 route add 10.244.0.0/16 via "
                        "10.244.0.1 dev eth0 && ip -n demo-fedora-3 route add default via 10.244.0.1 dev eth0")
    # The asking pod's own port disabled: its request dies as it comes in.
    k.down.discard(("demo-fedora-3", "eth0"))
    set_port(k, "demo-minikube", port3, "forwarding")
    set_port(k, "demo-minikube", lab.pod("fedora-1").host_veth, "disabled")
    last = ping(k, m, dst="10.244.0.3").hops[-1]
    assert "of cni0 in demo-minikube (veth peer of fedora-1's eth0) is in state disabled" in last.problem


def test_the_text_sends_the_user_to_up_only_where_up_repairs():
    """`netlab up` puts back what the lab's plan holds, a bridge port's state too (every port of the lab's bridges
    forwarding); not what a netlab command sets, nor a conntrack entry."""
    from netlab.trace.faults import up_repairs

    assert up_repairs("ip -n demo-minikube link set vethx up")
    assert up_repairs("ip -n demo-minikube neigh replace 10.244.1.0 lladdr aa:bb:cc:dd:ee:ff dev flannel.1 "
                      "nud permanent")
    assert up_repairs("bridge -n demo-minikube link set dev vethx state forwarding")
    assert not up_repairs("sudo netlab impair --lab demo fedora-1:eth0 --clear")
    assert not up_repairs("ip netns exec demo-node-1 conntrack -D -p tcp --orig-src 10.244.0.3 --orig-port-src 40000 "
                          "--orig-dst 10.96.0.20 --orig-port-dst 80")  # no DNAT, and TCP
    assert up_repairs("ip netns exec demo-node-1 conntrack -D -p udp --orig-src 10.244.0.3 --orig-port-src 40053 "
                      "--orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 192.168.122.13")  # services/stale.py's
