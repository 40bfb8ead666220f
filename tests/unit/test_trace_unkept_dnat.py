"""A Service packet the node DNATed but that died there before conntrack kept its entry, both modes (no root).

conntrack keeps (confirms) a flow's entry only when its first packet leaves the node or is delivered in it. A
node that does not forward (net.ipv4.ip_forward = 0) drops the DNATed packet at the forwarding decision; a bridge
port down towards the endpoint the rules picked leaves the node's ARP request for it unanswered, and the packet
waiting for the answer is dropped. Either way no entry is left, though the rules DNATed it: the trace says so
(it said "it was not DNATed here", followed the packet un-DNATed to the gateway and ended "look at the firewall"
without a fix). Which endpoint the rules picked is what the DNAT rule's counter says (iptables mode); without a
counter (nftables mode) the one whose way is blocked, since a packet DNATed to another would have left an entry.
And a stale entry's DNAT is conntrack's, not the Service's pick. The lab is topologies/services.yaml (web-1
10.244.0.2 on node-1 with the client, web-2 10.244.1.2 on node-2).
"""

from __future__ import annotations

import pytest

from netlab.trace.render import render_text
from test_trace_missing_rules import WEB_1, WEB_IP, sep_rules, services_lab, to_web, traced
from test_trace_walk import _result
from test_trace_wrong_dnat import dnated

N1 = "svc-node-1"


def no_forwarding(k) -> None:
    """sysctl -w net.ipv4.ip_forward=0 in node-1 (every other sysctl as the plan leaves it)."""
    k.sysctl = lambda ns, key: "0" if (ns, key) == (N1, "net.ipv4.ip_forward") else None


def counted(k, m, pod: str) -> str:
    """node-1's nat table counted the packet in ``pod``'s endpoint chain (its DNAT rule); the chain's name."""
    sep = next(e.sep_chain for e in m.service_for(WEB_IP, 80, "tcp").endpoints if e.pod == pod)
    k.counted[(N1, sep_rules(k, N1, sep)[-1])] = 1
    return sep


def port_of(k, m, pod_ns: str) -> str:
    """node-1's bridge port whose veth peer is the pod's eth0."""
    return next(name for name in k.links(N1) if m.peers.get((N1, name)) == (pod_ns, "eth0"))


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_a_node_that_does_not_forward_is_blamed_for_the_dnated_packet_with_its_fix(nft):
    _, m, k = services_lab(nft)
    no_forwarding(k)
    w, v = traced(m, k, to_web())
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind, row.facts.get("dropped_here")) == (N1, "dnat", True) and not v.delivered
    assert row is w.hops[-1] and w.outcome == "stopped"  # not followed un-DNATed to the gateway
    assert row.decision.startswith("DNAT by the rules, but no conntrack entry kept for 10.244.0.3:40000")
    assert "it was dropped before conntrack kept one; the rules DNATed it to one of its endpoints, but " \
           f"net.ipv4.ip_forward = 0 in {N1}: the node does not forward, so the DNATed packet in on cni0 is dropped " \
           "at the forwarding decision" in v.reason and "not DNATed here" not in v.reason
    # the flow traced is one of all those the node drops: every ClusterIP flow of its pods, whichever endpoint
    assert v.reason.endswith("before it leaves the node; so is every packet the node would forward, not only this "
                             "one: every flow between its pods and other nodes' pods, every ClusterIP flow from "
                             "its pods, whichever endpoint (DNATed, then routed), its pods' egress to internet "
                             "hosts, and every NodePort or LoadBalancer flow from outside that comes in on it"), \
        v.reason
    assert v.fix == f"ip netns exec {N1} sysctl -w net.ipv4.ip_forward=1"
    text = render_text(_result(w))
    assert "look at the firewall" not in text and f"fix: ip netns exec {N1} sysctl -w net.ipv4.ip_forward=1" in text


def test_the_dnat_counter_names_the_endpoint_the_rules_picked():
    _, m, k = services_lab(False)
    no_forwarding(k)
    sep = counted(k, m, "web-2")
    _, v = traced(m, k, to_web())
    assert f"the rules DNATed it to 10.244.1.2:8080 (web-2; the counter of {sep}'s DNAT went up during the trace), " \
           "but net.ipv4.ip_forward = 0" in v.reason


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_a_down_port_of_the_only_endpoint_the_packet_can_have_gone_to_is_blamed(nft):
    """web-1's port on cni0 is down: a packet DNATed to web-2 would have left node-1 (and an entry)."""
    _, m, k = services_lab(nft)
    port = port_of(k, m, "svc-web-1")
    k.down.add((N1, port))
    w, v = traced(m, k, to_web())
    row = w.hops[v.lost_at]
    assert (row.netns, row.kind, row.facts.get("dropped_here")) == (N1, "dnat", True) and row is w.hops[-1]
    assert f"the rules DNATed it to {WEB_1}:8080 (web-1; no counter says which endpoint the rules picked, but a " \
           "packet DNATed to another one would have left the node" in v.reason
    assert f"the bridge port {port} of cni0 in {N1} (veth peer of web-1's eth0) is down" in v.reason
    assert f"the node's ARP request for {WEB_1} goes unanswered" in v.reason
    assert v.fix == f"ip -n {N1} link set {port} up"


def test_a_down_port_is_blamed_only_for_the_endpoint_the_counter_names():
    _, m, k = services_lab(False)
    port = port_of(k, m, "svc-web-1")
    k.down.add((N1, port))
    sep = counted(k, m, "web-1")
    _, v = traced(m, k, to_web())
    assert f"(web-1; the counter of {sep}'s DNAT went up during the trace), but the bridge port {port}" in v.reason
    k.counted.clear()
    counted(k, m, "web-2")  # the rules picked web-2, whose way is open: the down port is not why
    w, _ = traced(m, k, to_web())
    row = next(h for h in w.hops if h.kind == "dnat")
    assert not row.facts.get("dropped_here") and "bridge port" not in (row.problem or "")


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_a_stale_entrys_dnat_is_conntracks_not_the_services_pick(nft):
    _, m, k = services_lab(nft)
    w, _ = traced(m, k, dnated(k, 8081, True))
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.decision.startswith(f"DNAT {WEB_IP}:80 → {WEB_1}:8081: conntrack's existing entry for this flow "
                                   f"DNATs it to {WEB_1} (web-1), not kube-proxy's rules for Service "
                                   "default/web:http (they never saw the packet)")
    assert "picked" not in row.decision and row.facts["stale_entry"] is True
