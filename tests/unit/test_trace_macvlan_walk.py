"""The walk through a pod whose eth0 is a macvlan child of its node's eth0 (the macvlan CNI plugin), with the fake
kernel: the default lab's pods turned into bridge-mode macvlans of their node's eth0 (no root).

macvlan_queue_xmit hands a frame for a sibling bridge-mode child's MAC straight to it; a private- or vepa-mode one,
or one for any other MAC, leaves by the lower device onto the wire. trace said "not a veth of the lab" instead.
"""

from __future__ import annotations

from dataclasses import replace

from netlab.trace.faults import up_repairs
from netlab.trace.flow import Flow
from netlab.trace.walk import walk
from test_trace_walk import world  # noqa: F401  (the fixture)

LOWER = 7


def _macvlans(lab, m, k, mode="bridge"):
    """Every pod's eth0 a ``mode`` macvlan of its node's eth0 (ifindex LOWER there), no veth between them."""
    for node in lab.nodes:
        k._links[node.netns]["eth0"] = replace(k._links[node.netns]["eth0"], index=LOWER)
    for pod in lab.pods:
        k._links[pod.netns]["eth0"] = replace(k._links[pod.netns]["eth0"], kind="macvlan", lower=LOWER,
                                              lower_elsewhere=True, mode=mode)
        m.peers.pop((pod.netns, "eth0"), None)


def test_two_macvlan_pods_of_a_node_are_switched_inside_the_driver(world):  # noqa: F811
    lab, m, k = world
    _macvlans(lab, m, k)
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.0.3", 7))
    assert w.outcome == "delivered" and w.end_netns == "demo-fedora-3", w.reason
    assert [(h.netns, h.kind) for h in w.hops] == [("demo-fedora-1", "route"), ("demo-fedora-1", "neigh"),
                                                   ("demo-fedora-1", "macvlan"), ("demo-fedora-3", "deliver")]
    mv = w.hops[2]
    assert mv.facts["lower"] == "eth0" and mv.facts["lower_netns"] == "demo-minikube" and "bridge mode" in mv.decision
    assert "arrives from eth0 in demo-fedora-1 (macvlan bridge mode, inside the driver)" in w.hops[3].decision


def test_a_vepa_macvlans_frame_leaves_by_the_lower_device_and_the_wire_does_not_send_it_back(world):  # noqa: F811
    lab, m, k = world
    _macvlans(lab, m, k, mode="vepa")
    w = walk(k, m, "demo-fedora-1", Flow.icmp(None, "10.244.0.3", 7))
    assert w.outcome == "stopped"
    mv = next(h for h in w.hops if h.kind == "macvlan")
    assert "leaves by eth0 onto its wire" in mv.decision
    # out of n1's eth0 to its veth peer in the underlay, whose bridge sends nothing back to n1
    assert w.hops[-1].netns == "demo-underlay" and w.hops[-1].kind == "bridge" and w.hops[-1].problem, w.hops[-1]


def test_a_macvlans_arp_for_its_nodes_own_address_is_explained(world):  # noqa: F811
    lab, m, k = world
    _macvlans(lab, m, k)
    node_ip = str(lab.node("minikube").ip)
    k.no_neigh[("demo-fedora-1", "eth0", node_ip)] = "INCOMPLETE"
    k.addrs[("demo-fedora-1", "eth0")] = [*k.addrs[("demo-fedora-1", "eth0")], "192.168.122.99/24"]  # on-link
    w = walk(k, m, "demo-fedora-1", Flow.icmp("10.244.0.2", node_ip, 7))
    assert w.outcome == "stopped" and "a macvlan child cannot reach it" in w.reason, w.reason


def test_a_vepa_macvlans_arp_for_a_sibling_names_the_underlay_ports_hairpin(world):  # noqa: F811
    """vepa: the ARP request for a sibling child leaves by the node's eth0 too, and the underlay's bridge sends
    nothing back out of the port it came in by without hairpin: that is why no answer comes, and its fix (trace
    said "nothing on that link answers for 10.244.0.3", qa-q54 #3)."""
    lab, m, k = world
    _macvlans(lab, m, k, mode="vepa")
    k.no_neigh[("demo-fedora-1", "eth0", "10.244.0.3")] = "INCOMPLETE"
    port = m.peers[("demo-minikube", "eth0")]
    w = walk(k, m, "demo-fedora-1", Flow.icmp("10.244.0.2", "10.244.0.3", 7))
    last = w.hops[-1]
    assert w.outcome == "stopped" and (last.netns, last.kind) == ("demo-fedora-1", "neigh"), w.reason
    assert "nothing on that link answers" not in last.problem, last.problem
    assert ("10.244.0.3 is pod fedora-3's eth0, a macvlan of minikube's eth0 too; in vepa mode the driver sends every "
            "frame, this ARP request too, out of eth0") in last.problem, last.problem
    assert f"sends no frame back out of {port[1]}, the port it came in by (eth0's veth peer)" in last.problem
    assert last.fix == f"bridge -n {port[0]} link set dev {port[1]} hairpin on"
    assert not up_repairs(last.fix)  # the plan keeps the underlay's ports without hairpin: `up` turns it off again
    # hairpin on: the request comes back and the sibling answers; an unanswered one is not this port's doing
    k._links[port[0]][port[1]] = replace(k._links[port[0]][port[1]], hairpin=True)
    last = walk(k, m, "demo-fedora-1", Flow.icmp("10.244.0.2", "10.244.0.3", 7)).hops[-1]
    assert "hairpin" not in last.problem and last.fix != f"bridge -n {port[0]} link set dev {port[1]} hairpin on"
