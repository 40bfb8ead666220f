"""What a node sends from to a Service, and what the route row of a bridged DNAT says, with a fake kernel (no root).

- A node's own packet to a ClusterIP: the kernel picks its source from the route to the ClusterIP (eth0's
  address, by the default route), nat OUTPUT then DNATs it, and POSTROUTING masquerades it to flannel.1's or
  cni0's address. The trace gave the masqueraded address as the node's source (the first address a capture saw),
  and had no row for the lookup that picked the source.
- A pod's packet to its Service whose endpoint is behind the same bridge: br_netfilter DNATs it at the bridge port
  and sends the frame back into the bridge (bridged_dnat): its route row said "(forwarded)", but the IP layer
  never forwards it (the TTL stays 64).

The lab is topologies/services.yaml (web-1 and client on node-1, web-2 on node-2).
"""

from __future__ import annotations

from pathlib import Path

from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, lab_from

ROOT = Path(__file__).resolve().parents[2]
WEB_IP, CLIENT, WEB_1, WEB_2 = "10.96.0.20", "10.244.0.3", "10.244.0.2", "10.244.1.2"


def services():
    lab = lab_from((ROOT / "topologies/services.yaml").read_text())
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def test_a_nodes_service_packet_is_sent_from_the_source_its_route_to_the_cluster_ip_picks():
    lab, m, k = services()
    node = str(lab.node("node-1").ip)
    fwd = Flow("tcp", node, WEB_IP, 40000, 80)
    for ep, masq, dev in ((WEB_2, "10.244.0.0", "flannel.1"), (WEB_1, "10.244.0.1", "cni0")):
        k.ct["svc-node-1"] = [CtEntry(fwd, Flow("tcp", ep, masq, 8080, 50000), "SYN_SENT")]
        w = walk(k, m, "svc-node-1", fwd)
        assert w.outcome == "delivered", w.reason
        assert w.source == node  # the header's and JSON's source.ip (run.py), not the masqueraded address
        first = w.hops[0]
        assert (first.netns, first.kind, first.device) == ("svc-node-1", "route", "eth0"), first
        assert first.decision.startswith(f"route get {WEB_IP} → via 192.168.122.1 dev eth0 src {node}: the source "
                                         f"address {node} the socket sends from"), first.decision
        assert first.commands == [f"ip -n svc-node-1 route get {WEB_IP}"]
        assert first.facts["source"] == node and first.facts["source_route"] is True
        assert "oif" not in first.facts and "iif" not in first.facts  # not the packet's way out: the DNAT's is
        assert [h.kind for h in w.hops[1:3]] == ["dnat", "route"] and w.hops[1].device == dev
        snat = next(h for h in w.hops if h.kind == "snat")
        assert snat.facts["before"].startswith(f"{node}:") and snat.facts["after"].startswith(f"{masq}:"), snat.facts


def test_a_pods_packet_sent_to_another_pod_names_no_source_row():
    lab, m, k = services()
    w = walk(k, m, "svc-node-1", Flow.icmp(None, WEB_2, 7))
    assert w.source == "10.244.0.0" and not any(h.facts.get("source_route") for h in w.hops)  # flannel.1's
    w = walk(k, m, "svc-client", Flow("tcp", CLIENT, WEB_2, 40000, 8080))
    assert w.source == CLIENT and not any(h.facts.get("source_route") for h in w.hops)


def test_the_route_row_of_a_bridged_dnat_says_it_is_not_ip_forwarded():
    lab, m, k = services()
    flow = Flow("tcp", CLIENT, WEB_IP, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_1, CLIENT, 8080, 40000), "SYN_RECV")]
    w = walk(k, m, "svc-client", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-1", w.reason
    [route] = [h for h in w.hops if h.kind == "route" and h.netns == "svc-node-1"]
    assert "(forwarded)" not in route.decision, route.decision
    assert ("(br_netfilter's lookup after the DNAT at the bridge port: the new destination is behind cni0 too, so "
            "the frame goes back into the bridge; it is not IP-forwarded, and its TTL is not decremented)") \
        in route.decision, route.decision
    assert route.facts["bridged_dnat"] is True and route.facts["iif"] == "cni0"
    # to web-2 on the other node the same packet is routed out of flannel.1: forwarded
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_2, "10.244.0.0", 8080, 40000), "SYN_SENT")]
    w = walk(k, m, "svc-client", flow)
    route = next(h for h in w.hops if h.kind == "route" and h.netns == "svc-node-1")
    assert "(forwarded)" in route.decision and "bridged_dnat" not in route.facts, route.decision


def test_a_nodes_echo_to_a_cluster_ip_has_the_source_row_too():
    """kube-proxy DNATs a Service's TCP and UDP ports only: a node's ping to the ClusterIP is routed by the
    ClusterIP itself, from the source that lookup picks (eth0's address). The row that says so is the one a TCP
    or UDP packet of the node gets; a node's ping to a pod names none (its source is the route row's own)."""
    lab, m, k = services()
    node = str(lab.node("node-1").ip)
    w = walk(k, m, "svc-node-1", Flow.icmp(None, WEB_IP, 7))
    assert w.source == node
    first = w.hops[0]
    assert (first.netns, first.kind, first.device) == ("svc-node-1", "route", "eth0"), first
    assert first.decision == (
        f"route get {WEB_IP} → via 192.168.122.1 dev eth0 src {node}: the source address {node} the socket sends "
        f"from, picked by the route to the address it sent to (Service default/web's ClusterIP: kube-proxy DNATs only its "
        f"ports, TCP and UDP, not this ICMP echo, so the packet is routed by this destination and this lookup)"), \
        first.decision
    assert first.commands == [f"ip -n svc-node-1 route get {WEB_IP}"]
    assert first.facts["source"] == node and first.facts["source_route"] is True and "oif" not in first.facts
    assert w.hops[1].kind == "route" and not w.hops[1].facts.get("source_route")
    # from a pod: no such row (the pod's own packet is not the node's)
    w = walk(k, m, "svc-client", Flow.icmp(None, WEB_IP, 7))
    assert not any(h.facts.get("source_route") for h in w.hops)
