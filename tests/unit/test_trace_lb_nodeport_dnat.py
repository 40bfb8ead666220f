"""An internet host's packet to a LoadBalancer IP: the balancer sends it to a node's nodePort, and the DNAT it meets on
that node is the nodePort's (kube-proxy's KUBE-NODEPORTS; nftables mode: map service-nodeports), not the
LoadBalancer IP's: with a fake kernel (no root), in both kube-proxy modes.

The DNAT row said "Service default/web-lb picked endpoint web-2 (KUBE-SVC-... → KUBE-SEP-...)" and the result
"svc/web-lb:80 DNATed to 10.244.1.2:8080", as if the node had DNATed the LoadBalancer IP; its nat table's rule for the
LoadBalancer IP counts nothing there, the nodePort rule does. The lab is topologies/services.yaml: web-lb at
203.0.113.100:80, nodePort 30081, endpoints web-1 (node-1) and web-2 (node-2).
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

LB, EXAMPLE, NODE_2, WEB_2, N2_VTEP = "203.0.113.100", "203.0.113.10", "192.168.122.3", "10.244.1.2", "10.244.1.0"


@pytest.mark.parametrize("nft", [False, True], ids=["iptables", "nftables"])
def test_the_balancers_packet_meets_the_nodeport_dnat_and_says_so(nft):
    lab, m, k = services_lab(nft)
    flow = Flow("tcp", EXAMPLE, LB, 40000, 80)
    at_node = Flow("tcp", LB, NODE_2, 40000, 30081)
    k.ct["svc-lb"] = [CtEntry(flow, Flow("tcp", NODE_2, LB, 30081, 40000), "SYN_SENT")]
    k.ct["svc-node-2"] = [CtEntry(at_node, Flow("tcp", WEB_2, N2_VTEP, 8080, 50000), "SYN_SENT")]
    if not nft:  # the kernel's counter of kube-proxy's nodePort rule took the packet
        [rule] = [x for x in m.planned_nat["svc-node-2"].rules if x.startswith("-A KUBE-NODEPORTS ")
                  and "--dport 30081 " in x]
        k.counted[("svc-node-2", rule)] = 1
    w = walk(k, m, "svc-example", flow)
    assert w.outcome == "delivered" and w.end_netns == "svc-web-2", w.hops
    row = next(h for h in w.hops if h.kind == "dnat" and h.netns == "svc-node-2")
    # via is the Service's address the packet was sent to, in probe's words: the LoadBalancer IP (QA q43 1), though
    # the node's DNAT is its nodePort's, which the row says in node_port and its words
    assert row.facts["endpoint"] == "web-2" and row.facts["via"] == "LoadBalancer", row.facts
    assert row.facts["node_port"] == f"{NODE_2}:30081", row.facts
    assert f"DNAT {NODE_2}:30081 → {WEB_2}:8080: the nodePort path, 30081 on {NODE_2} (node-2): Service " \
           "default/web-lb:http picked endpoint web-2 (" in row.decision, row.decision
    sep = row.facts["sep_chain"]
    want = (rf"\(nat-prerouting → services → map service-nodeports → external-\S+ → service-\S+ → {re.escape(sep)}\)"
            if nft else rf"\(PREROUTING → KUBE-SERVICES → KUBE-NODEPORTS → KUBE-EXT-\w+ → KUBE-SVC-\w+ → {sep}\)")
    assert re.search(want, row.decision), row.decision
    path = row.facts["path"]
    assert path.startswith(f"a packet to node-2's nodePort {NODE_2}:30081, where the load balancer holding its "
                           f"LoadBalancer IP {LB}:80 sends it"), path
    if nft:
        assert "kube-proxy's element tcp . 30081 of map service-nodeports" in path, path
        assert re.search(rf": nat-prerouting → services → map service-nodeports → external-\S+ → service-\S+ → "
                         rf"endpoint-\S+__{WEB_2}/8080", path), path
    else:
        assert re.search(r": PREROUTING → KUBE-SERVICES → KUBE-NODEPORTS → KUBE-EXT-\w+ → KUBE-SVC-\w+ → KUBE-SEP-\w+;",
                         path), path
        assert f"`{rule}` counted it (its counter went up by 1 during the trace)" in path, path
        assert "loadbalancer IP" not in path
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    r = TraceResult(lab="svc", src={"name": "example", "ip": EXAMPLE},
                    dst={"name": "svc/web-lb", "kind": "service", "ip": LB, "service": "web-lb"},
                    proto="tcp", port=80, marker="m", forward=w, verdict=explain(w), reply=None,
                    reply_verdict=None, reply_received=False)
    assert r.endpoint is not None and r.endpoint["via"] == "LoadBalancer", r.endpoint
    assert r.to_json()["endpoint"]["via"] == "LoadBalancer"
    result = next(line for line in render_text(r, width=1000).splitlines() if line.startswith("result:"))
    assert f"(svc/web-lb's LoadBalancer IP {LB}:80, which the load balancer sent to node-2's nodePort " \
           f"{NODE_2}:30081, DNATed there to {WEB_2}:8080)" in result, result
    assert "svc/web-lb:80 DNATed" not in result
