"""An internet host's packet to a LoadBalancer IP: the internet's gateway routes it to a node untranslated (a
passthrough balancer, plan/internet.py), and the DNAT it meets on that node is kube-proxy's rule for the
LoadBalancer IP ("<svc> loadbalancer IP" in KUBE-SERVICES; nftables mode: its element of map service-ips), not a
nodePort's: with a fake kernel (no root), in both kube-proxy modes.

Before, the lab's balancer DNATed the packet to a node's nodePort and masqueraded it, so the endpoint never saw the
client's address, also with externalTrafficPolicy Local (QA: fidelity to a passthrough balancer such as MetalLB's).
The lab is topologies/services.yaml: web-lb at 203.0.113.100:80, nodePort 30081, endpoints web-1 (node-1) and
web-2 (node-2).
"""

from __future__ import annotations

import re

import pytest

from netlab.trace.facts import CtEntry
from netlab.trace.flow import Flow
from netlab.trace.render import TraceResult, render_text
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_missing_rules import services_lab
from test_trace_walk import _seen_everywhere

LB, EXAMPLE, NODE_2, WEB_2, N2_CNI0 = "203.0.113.100", "203.0.113.10", "192.168.122.3", "10.244.1.2", "10.244.1.1"


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_the_gateway_routes_the_lb_ip_to_a_node_whose_kube_proxy_dnats_it(nft):
    lab, m, k = services_lab(nft)
    flow = Flow("tcp", EXAMPLE, LB, 40001, 80)  # the fake gateway's hash of these ports picks node-2
    k.ct["svc-node-2"] = [CtEntry(flow, Flow("tcp", WEB_2, N2_CNI0, 8080, 50000), "SYN_SENT")]
    if not nft:  # the kernel's counter of kube-proxy's rule for the LoadBalancer IP took the packet
        [rule] = [x for x in m.planned_nat["svc-node-2"].rules if x.startswith("-A KUBE-SERVICES ")
                  and f"-d {LB}/32 " in x]
        k.counted[("svc-node-2", rule)] = 1
    w = walk(k, m, "svc-example", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2", w.hops
    assert [h.netns for h in w.hops if h.kind == "dnat"] == ["svc-node-2"]  # nothing translated it on the way
    (route,) = [h for h in w.hops if h.kind == "route" and h.netns == "svc-gateway"]
    assert route.facts["gateway"] == NODE_2 and route.decision.endswith(f"picked {NODE_2} (node-2)"), route
    row = next(h for h in w.hops if h.kind == "dnat")
    assert row.facts["endpoint"] == "web-2" and row.facts["via"] == "LoadBalancer", row.facts
    assert "node_port" not in row.facts, row.facts
    assert f"DNAT {LB}:80 → {WEB_2}:8080: Service default/web-lb:http picked endpoint web-2" in row.decision, \
        row.decision
    path = row.facts["path"]
    assert path.startswith(f"a packet from outside the cluster to the LoadBalancer IP {LB}:80, which the gateway "
                           "routed to this node untranslated (a passthrough balancer): kube-proxy's "), path
    if nft:
        assert f"element {LB} . tcp . 80 of map service-ips (from nat-prerouting" in path, path
        assert re.search(rf": nat-prerouting → services → external-\S+ → service-\S+ → endpoint-\S+__{WEB_2}/8080;",
                         path), path
    else:
        assert 'rule "default/web-lb:http loadbalancer IP" in KUBE-SERVICES (from PREROUTING' in path, path
        assert re.search(r": PREROUTING → KUBE-SERVICES → KUBE-EXT-\w+ → KUBE-SVC-\w+ → KUBE-SEP-\w+;", path), path
        assert "KUBE-NODEPORTS" not in path
    assert "marks it for the masquerade" in path and path.endswith("picks among every endpoint"), path
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    r = TraceResult(lab="svc", src={"name": "example", "ip": EXAMPLE},
                    dst={"name": "svc/web-lb", "kind": "service", "ip": LB, "service": "web-lb"},
                    proto="tcp", port=80, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=False)
    assert r.endpoint is not None and r.endpoint["via"] == "LoadBalancer", r.endpoint
    result = next(line for line in render_text(r, width=1000).splitlines() if line.startswith("result:"))
    assert f"(svc/web-lb's LoadBalancer IP {LB}:80 DNATed to {WEB_2}:8080)" in result, result
    assert "load balancer sent" not in result
