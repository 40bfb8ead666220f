"""A packet to a LoadBalancer IP from inside the cluster (a pod, a node itself), with a fake kernel (no root), in
both kube-proxy modes.

kube-proxy matches the LoadBalancer IP in its Service dispatch, reached from nat PREROUTING and OUTPUT, so such a
packet is DNATed on its node and never leaves it (the internet's gateway routes the address to the nodes). trace
took the address for the balancer's, an internet host ("delivered to lb"), and named neither the Service nor the
chains. An internet host's packet is routed to a node as it is, whose kube-proxy DNATs it the same way.
The lab is topologies/services.yaml: web-lb at 203.0.113.100:80, endpoints web-1 (node-1) and web-2 (node-2).
"""

from __future__ import annotations

import re

import pytest

from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.render import TraceResult, render_text
from netlab.trace.targets import Endpoint, capture_namespaces, resolve_target
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_missing_rules import services_lab
from test_trace_walk import _seen_everywhere

LB, NODE_1, CLIENT, WEB_2, N1_VTEP = "203.0.113.100", "192.168.122.2", "10.244.0.3", "10.244.1.2", "10.244.0.0"


def dnated(k, src: str, masq: str):
    """node-1's conntrack entry: the packet from ``src`` to the LB IP DNATed to web-2, masqueraded to ``masq``."""
    flow = Flow("tcp", src, LB, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_2, masq, 8080, 50000), "SYN_SENT")]
    return flow


@pytest.mark.parametrize("source", ["node-1", "client"])
def test_the_lb_ip_from_inside_is_the_service_not_the_balancer(source):
    lab, _, _ = services_lab(False)
    src = Endpoint(source, "node", NODE_1, "svc-node-1") if source == "node-1" else \
        Endpoint(source, "pod", CLIENT, "svc-client")
    dst = resolve_target(lab, LB, "tcp", 80, src)
    assert (dst.kind, dst.ip, dst.service, dst.port, dst.netns) == ("service", LB, "web-lb", 80, None), dst
    # another port of the LoadBalancer IP is not the Service's: the address as it is
    assert resolve_target(lab, LB, "tcp", 81, src).kind == "ip"


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
@pytest.mark.parametrize("source", ["node-1", "client"])
def test_the_dnat_row_names_the_service_and_its_path(nft, source):
    lab, m, k = services_lab(nft)
    own = source == "node-1"
    flow = dnated(k, NODE_1 if own else CLIENT, N1_VTEP)
    w = walk(k, m, f"svc-{source}", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2", w.hops
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.netns == "svc-node-1" and row.facts["service"] == "default/web-lb:http", row.facts
    assert row.facts["endpoint"] == "web-2" and "Service default/web-lb:http picked endpoint web-2" in row.decision
    path = row.facts["path"]
    who = "the node's own packet" if own else "a pod's packet"
    assert path.startswith(f"{who} to the LoadBalancer IP {LB}:80 never goes to the load balancer: "), path
    if nft:
        hook = "nat-output" if own else "nat-prerouting"
        assert f"element {LB} . tcp . 80 of map service-ips (from {hook}" in path, path
        assert re.search(rf": {hook} → services → external-\S+ → service-\S+ → endpoint-\S+__{WEB_2}/8080;",
                         path), path
        assert "marks it for the masquerade (mark-for-masquerade)" in path and "(chain masquerading)" in path
    else:
        hook = "OUTPUT" if own else "PREROUTING"
        assert f'rule "default/web-lb:http loadbalancer IP" in KUBE-SERVICES (from {hook}' in path, path
        assert re.search(rf": {hook} → KUBE-SERVICES → KUBE-EXT-\w+ → KUBE-SVC-\w+ → {row.facts['sep_chain']};",
                         path), path
        assert "marks it for the masquerade (KUBE-MARK-MASQ)" in path and "(KUBE-POSTROUTING)" in path
    assert path.endswith("picks among every endpoint")
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    r = TraceResult(lab="svc", src={"name": source, "ip": flow.src}, dst={"name": "svc/web-lb", "ip": LB},
                    proto="tcp", port=80, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=False)
    text = render_text(r, width=400)
    assert "\n  path: the " in text or "\n  path: a " in text  # under the Service's line, its own line (wrapped)
    assert f"path: {path} result:" in " ".join(text.split()) and r.to_json()["endpoint"]["path"] == path


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_an_internet_hosts_packet_is_routed_to_a_node_whose_kube_proxy_dnats_it(nft):
    """The gateway routes the LB IP to a node untranslated (a passthrough balancer): the node's kube-proxy DNATs it
    by its "loadbalancer IP" rule, as an outside client's (externalTrafficPolicy Cluster: marked for the masquerade);
    no DNAT on the way there."""
    lab, m, k = services_lab(nft)
    flow = Flow("tcp", "203.0.113.10", LB, 40000, 80)
    k.ct["svc-node-1"] = [CtEntry(flow, Flow("tcp", WEB_2, N1_VTEP, 8080, 50000), "SYN_SENT")]
    w = walk(k, m, "svc-example", flow)
    dnats = [h for h in w.hops if h.kind == "dnat"]
    assert [h.netns for h in dnats] == ["svc-node-1"], w.hops
    # At the gateway: the multipath route, its hops and the one the hash of the packet's ports picked (node-1's).
    (route,) = [h for h in w.hops if h.kind == "route" and h.netns == "svc-gateway"]
    assert route.facts["hops"] == [NODE_1, "192.168.122.3"] and route.facts["gateway"] == NODE_1, route
    assert (f"a multipath route of 2 hops, {NODE_1} (node-1), 192.168.122.3 (node-2): svc-gateway's hash of the "
            f"packet's ") in route.decision and route.decision.endswith(f"picked {NODE_1} (node-1)"), route.decision
    assert route.commands[0].endswith(" ipproto tcp sport 40000 dport 80"), route.commands
    assert dnats[0].facts["service"] == "default/web-lb:http" and dnats[0].facts["endpoint"] == "web-2"
    path = dnats[0].facts["path"]
    assert path.startswith(f"a packet from outside the cluster to the LoadBalancer IP {LB}:80, which the gateway "
                           "routed to this node untranslated (a passthrough balancer): kube-proxy's "), path
    assert "marks it for the masquerade" in path and path.endswith("picks among every endpoint"), path


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_without_the_lb_rule_the_nodes_packet_goes_astray_through_the_balancer(nft):
    lab, m, k = services_lab(nft)
    if nft:
        [line] = [x for x in m.planned_nft["svc-node-1"] if x.startswith(f"element service-ips {LB} . tcp . 80 ")]
        k.gone.add(("svc-node-1", line))
    else:
        [line] = [x for x in m.planned_nat["svc-node-1"].rules if f"-d {LB}/32 " in x]
        k.no_rule.add(("svc-node-1", line))
    w = walk(k, m, "svc-node-1", Flow("tcp", NODE_1, LB, 40000, 80))
    row = w.hops[0]
    assert row.kind == "dnat" and row.cause and row.facts.get("astray") is True, row
    assert "out of the cluster to the internet's gateway, which routes 203.0.113.100 back to a node" \
        in row.problem and "no interface owns" not in row.problem, row.problem


def test_an_internet_hosts_packet_to_the_lb_ip_is_the_services_captured_at_its_endpoints():
    """QA ql 4: `trace example 203.0.113.100 --port 80` took the address for the internet host lb: no endpoint
    captured, no counter, and a note that lb's echo server answered. It is svc/web-lb at that address, as from
    inside: the endpoints are captured (the delivery row can be seen), kube-proxy's counters read, no listener."""
    lab, _, _ = services_lab(False)
    src = Endpoint("example", "internet", "203.0.113.10", "svc-example")
    dst = resolve_target(lab, LB, "tcp", 80, src)
    assert (dst.kind, dst.ip, dst.service, dst.port, dst.netns) == ("service", LB, "web-lb", 80, None), dst
    assert {"svc-web-1", "svc-web-2", "svc-gateway", "svc-node-1", "svc-node-2"} <= set(capture_namespaces(lab, src,
                                                                                                          dst))
    assert resolve_target(lab, LB, "udp", 80, src).kind == "ip"  # the Service's port is TCP: the address as it is
