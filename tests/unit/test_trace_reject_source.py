"""The ICMP port unreachable a REJECT answers with, and where it goes (no root).

A node's own request that kube-proxy's REJECT refuses on its way out (OUTPUT) is answered to the node itself, from
the request's own source (the local route to that address picks it), through lo.
"""

from __future__ import annotations

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.rejectanswer import start_rows, walk_answer
from netlab.trace.verdict import mark_seen
from test_trace_reject_answer import _errors_seen, result
from test_trace_service_paths import traced
from test_trace_walk import FakeKernel, lab_from

TOPOLOGY = """name: ra
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: a, node: n1}
  - {name: c, node: n2, labels: {app: web}}
  - {name: d, node: n2}
services:
  - {name: none, clusterIP: 10.96.0.40, selector: {app: none}, ports: [{port: 80}]}
networkPolicies:
  - {name: deny-web, spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}}
"""


def build():
    lab = lab_from(TOPOLOGY)
    plan = build_plan(lab)
    return lab, LabMap.from_lab(lab, plan), FakeKernel(lab, plan)


def test_a_nodes_own_request_refused_on_its_way_out_is_answered_to_itself_through_lo():
    """kube-proxy's REJECT in the node's OUTPUT (a ClusterIP without endpoints): the kernel answers the node itself,
    from the request's own source (the local route to it picks that address), and the ICMP error loops back through
    lo to the socket, which gets ECONNREFUSED (measured: curl from the node, tcpdump -i lo). trace showed no reply
    rows at all."""
    lab, m, k = build()
    n1 = str(lab.node("n1").ip)
    request = Flow("tcp", n1, "10.96.0.40", 40000, 80)
    fwd, v = traced(m, k, request, src="ra-n1")
    stop = fwd.hops[v.lost_at]
    assert stop.netns == "ra-n1" and "has no endpoints" in stop.facts["rejected"], v.reason
    back = walk_answer(k, m, lab, fwd, refused=True)
    assert back is not None and back.outcome == "delivered" and back.end_netns == "ra-n1"
    mark_seen(back.hops, _errors_seen(back), {h.netns for h in back.hops})
    r = result(fwd, back, v, proto="tcp")
    start_rows(r)
    assert r.reply is not None, "no reply rows"
    first, last = r.reply.hops[0], r.reply.hops[-1]
    assert first.kind == "reject" and first.decision.startswith(
        f"kube-proxy's REJECT at hop {stop.index} answers the request with an ICMP port unreachable (type 3 code 3) "
        f"from {n1}, the request's own source (the node answers itself; its local route to that address picks it), "
        f"to {n1}, quoting the request ({request}), as the node's own packet"), \
        first.decision
    assert (last.netns, last.device, last.kind) == ("ra-n1", "lo", "deliver"), last
    assert last.observe is not None and last.observe.flow == Flow.unreachable(n1, n1, request)
    assert r.reply_verdict.delivered and [h.index for h in r.reply.hops] == list(range(1, len(r.reply.hops) + 1))
