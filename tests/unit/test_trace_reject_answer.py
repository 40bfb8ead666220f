"""The answer a REJECT on the way sends back is walked back as the reply (no root; qa-q54 #2).

A UDP datagram kube-proxy's REJECT refused (a nodePort without endpoints) or a NetworkPolicy's REJECT refused before
the pod's ARP entry was asked for: the node's kernel answers with an ICMP port unreachable that conntrack relates to
the flow, and tcpdump in the client sees it arrive. The walk stopped at the node, so no reply was walked: no reply
rows, though the TCP reset of a REJECT had them. The reply rows now start at the node that answered.
"""

from __future__ import annotations

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow, Packet
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number
from netlab.trace.rejectanswer import start_rows, walk_answer
from netlab.trace.verdict import explain, mark_seen
from test_trace_service_paths import traced
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from

TOPOLOGY = """name: ra
nodes: [{name: n1}, {name: n2}]
internet:
  hosts: [{name: client, ip: 203.0.113.50}]
pods:
  - {name: a, node: n1}
  - {name: c, node: n2, labels: {app: web}}
services:
  - {name: empty, type: NodePort, selector: {app: none}, ports: [{port: 54, protocol: UDP, nodePort: 30054}]}
  - {name: none, clusterIP: 10.96.0.40, selector: {app: none}, ports: [{port: 80}]}
networkPolicies:
  - {name: deny-web, spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}}
"""


def _errors_seen(w):
    """The capture of an ICMP error at every row: as decode.classify makes it (outer flow, type, code, quote)."""
    return [Packet(h.observe.netns, h.observe.ifname, h.observe.direction, float(i),
                   Flow("icmp", h.observe.flow.src, h.observe.flow.dst), "error",
                   icmp_error={"type": 3, "code": h.observe.flow.code}, quoted=h.observe.flow.quoted)
            for i, h in enumerate(w.hops) if h.observe]


def build():
    lab = lab_from(TOPOLOGY)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def result(fwd, back, verdict, proto="udp") -> TraceResult:
    r = TraceResult(lab="ra", src={"name": "client"}, dst={"name": "n2"}, proto=proto, port=30054, marker="m",
                    forward=fwd, reply=back, verdict=verdict, reply_verdict=explain(back), reply_received=False)
    number(r)
    return r


def test_kube_proxys_reject_of_a_nodeport_is_answered_from_its_node_back_to_the_client():
    lab, m, k = build()
    n2 = str(lab.node("n2").ip)
    fwd, v = traced(m, k, Flow("udp", "203.0.113.50", n2, 40000, 30054), src="ra-client")
    stop = fwd.hops[v.lost_at]
    assert stop.netns == "ra-n2" and "has no endpoints" in stop.facts["rejected"], v.reason
    back = walk_answer(k, m, lab, fwd, refused=True)
    assert back is not None and back.outcome == "delivered" and back.end_netns == "ra-client"
    mark_seen(back.hops, _errors_seen(back), {h.netns for h in back.hops})
    assert all(h.seen for h in back.hops if h.observe)
    r = result(fwd, back, v)
    start_rows(r)
    first, route = r.reply.hops[0], r.reply.hops[1]
    assert first.kind == "reject" and first.index == 1 and first.direction == "reply"
    assert first.decision.startswith(f"kube-proxy's REJECT at hop {stop.index} answers the request with an ICMP "
                                     f"port unreachable (type 3 code 3) from {n2}, the address the request was for, "
                                     f"to 203.0.113.50, quoting the request (203.0.113.50:40000 → {n2}:30054 udp)"), \
        first.decision
    assert r.reply.hops[-1].observe.flow == Flow.unreachable(n2, "203.0.113.50", fwd.final)
    assert (route.netns, route.kind) == ("ra-n2", "route") and "iif" not in route.facts
    assert r.reply.hops[-1].netns == "ra-client" and r.reply_verdict.delivered
    # not refused (no reset, no port unreachable came back): no rows for an answer nobody sent
    assert walk_answer(k, m, lab, fwd, refused=False) is None


def test_kube_proxys_reject_of_a_tcp_cluster_ip_answers_with_the_nodes_icmp_port_unreachable_not_a_reset():
    """kube-proxy's REJECT is ``--reject-with icmp-port-unreachable`` (nft's ``reject`` in an ip table) for TCP too:
    the answer is an ICMP error from the address n1's route to the client picks (cni0's, the pod's gateway: the
    ClusterIP is none of n1's), quoting the SYN, not a TCP reset from the ClusterIP (qa58k #1)."""
    lab, m, k = build()
    a = str(lab.pod("a").ip)
    fwd, v = traced(m, k, Flow("tcp", a, "10.96.0.40", 40000, 80), src="ra-a")
    stop = fwd.hops[v.lost_at]
    assert stop.netns == "ra-n1" and "has no endpoints" in stop.facts["rejected"], v.reason
    back = walk_answer(k, m, lab, fwd, refused=True)
    assert back is not None and back.outcome == "delivered" and back.end_netns == "ra-a"
    gw = next(x.split("/")[0] for x in k.links("ra-n1")["cni0"].addresses)
    error = Flow.unreachable(gw, a, Flow("tcp", a, "10.96.0.40", 40000, 80))
    assert back.final == error and all(h.observe.flow == error for h in back.hops if h.observe), back.hops
    mark_seen(back.hops, _errors_seen(back), {h.netns for h in back.hops})
    assert all(h.seen for h in back.hops if h.observe)
    # a TCP segment from the ClusterIP (what the rows followed before) is no row's packet: the capture never sees one
    mark_seen(back.hops, _seen_everywhere(back, "reply"), {h.netns for h in back.hops})
    assert not any(h.seen for h in back.hops if h.observe)
    mark_seen(back.hops, _errors_seen(back), {h.netns for h in back.hops})
    r = result(fwd, back, v, proto="tcp")
    start_rows(r)
    first = r.reply.hops[0]
    assert first.decision.startswith(f"kube-proxy's REJECT at hop {stop.index} answers the request with an ICMP "
                                     f"port unreachable (type 3 code 3) from {gw}, the address its route to the "
                                     f"client picks, to {a}, quoting the request ({a}:40000 → 10.96.0.40:80 tcp)"), \
        first.decision
    assert "reset" not in first.decision and r.reply.hops[-1].netns == "ra-a"


def test_a_policy_reject_before_the_pods_arp_entry_is_answered_from_the_pods_node():
    lab, m, k = build()
    c = str(lab.pod("c").ip)
    k.no_neigh[("ra-n2", "cni0", c)] = None  # the REJECT dropped the request: n2 never asked for c's address
    fwd, _ = traced(m, k, Flow("udp", str(lab.pod("a").ip), c, 40000, 5353), src="ra-a")
    assert fwd.outcome != "delivered" and fwd.hops[-1].netns == "ra-n2"
    back = walk_answer(k, m, lab, fwd, refused=True)
    assert back is not None and back.end_netns == "ra-a", [(h.netns, h.decision) for h in back.hops]
    # walked as c's reply arriving at n2 on cni0: n2's route row follows (policy.reply_from_reject starts there)
    assert any(h.netns == "ra-n2" and h.kind == "route" and h.facts.get("oif") for h in back.hops)
    assert not any(h.netns == "ra-c" for h in back.hops)  # c never answered, nor was its ARP entry asked
