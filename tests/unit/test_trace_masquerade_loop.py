"""A routing loop through nodes that masquerade: the packet's source (and a ping's echo id) changes each lap, yet it
goes round the same routers to the same destination until its TTL runs out (no root).

Measured (3-node vxlan lab; n1 routes 10.244.2.2/32 via n2, n2 via n3, n3 via n1; a ping from pod a on n1 to c
on n3; tcpdump -v on each node's eth0): n1 forwards it unNATed with TTL 63, n2 masquerades it to 192.168.122.3,
n3 forwards it back to n1, n1 masquerades it to 192.168.122.2, n2 to 192.168.122.3 again, each time with a new
echo id (conntrack's tuple differs each lap, so each masquerade is a new mapping), ...; n1 gets it with TTL 1 from
n3 and drops it (its IpInHdrErrors counts it). trace took each lap for a new state: 121 rows n1 → n2 → n3 → n1, a
MASQUERADE row each pass, no loop row, and its own "more than 64 steps" hidden behind an earlier row's problem.
"""

from __future__ import annotations

from netlab.plan.build import build_plan
from netlab.trace.facts import CtEntry, RouteFacts
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.verdict import explain
from netlab.trace.walk import Walker, walk
from test_trace_walk import FakeKernel, lab_from

TOPOLOGY = """name: ml
network: {mode: vxlan, underlay: {cidr: 192.168.122.0/24, mtu: 1500}}
nodes: [{name: n1}, {name: n2}, {name: n3}]
pods:
  - {name: a, node: n1}
  - {name: c, node: n3}
"""
NEXT = {"ml-n1": "192.168.122.3", "ml-n2": "192.168.122.4", "ml-n3": "192.168.122.2"}
OWN = {"ml-n1": "192.168.122.2", "ml-n2": "192.168.122.3", "ml-n3": "192.168.122.4"}


def looped():
    lab = lab_from(TOPOLOGY)
    plan = build_plan(lab)
    k = FakeKernel(lab, plan)
    m = LabMap.from_lab(lab, plan)
    c = next(ip for ip, name in m.ip_names.items() if name == "c")
    plain = k.route_get

    def route_get(netns, dst, src=None, iif=None, l4=None):
        if dst == c and netns in NEXT:  # ip -n NODE route add C/32 via NEXT dev eth0
            return RouteFacts("unicast", "eth0", NEXT[netns], OWN[netns], matched=f"{c} via {NEXT[netns]} dev eth0")
        return plain(netns, dst, src, iif, l4)

    k.route_get = route_get
    # conntrack as the kernel keeps it: n2 masquerades the pod's ping to its own address, n1 the one back from n3
    # to its own, n2 that to its own again, ...: each lap's packet is a new flow (its echo id is new), so each
    # masquerade is a new entry with a new id
    src, ident = "10.244.0.2", 4242
    for lap in range(40):
        ns = "ml-n2" if lap % 2 == 0 else "ml-n1"
        new = 1000 + lap
        k.ct.setdefault(ns, []).append(CtEntry(Flow.icmp(src, c, ident), Flow.icmp(c, OWN[ns], new)))
        src, ident = OWN[ns], new
    return k, m, c


def test_a_loop_whose_source_a_masquerade_changes_each_lap_is_said_once_with_where_its_ttl_runs_out():
    k, m, c = looped()
    w = walk(k, m, "ml-a", Flow.icmp(None, c, 4242))
    v = explain(w)
    kinds = [(h.netns, h.kind) for h in w.hops]
    assert w.outcome == "loop" and w.hops[-1].kind == "loop", kinds
    assert len(w.hops) < 50 and kinds.count(("ml-n1", "snat")) <= 2, kinds
    loop = w.hops[-1]
    assert loop.facts["loop"] == ["ml-n2", "ml-n3", "ml-n1"], loop.facts
    assert (loop.netns, loop.device) == ("ml-n1", "eth0") and loop.facts["ttl_expires"] == "ml-n1", loop.facts
    # the packet n1 drops came from n3 with n2's masquerade address as its source: the time exceeded is
    # addressed there, not to the pod that sent it; and n1, which routes it back out of eth0 to a router on
    # 192.168.122.3's own link, sent 192.168.122.3 a redirect each lap: the rate limit holds the error back
    assert "would send 192.168.122.3 (the source it came in with, a masquerade's, not its sender's) an ICMP time " \
        "exceeded from 192.168.122.2" in loop.problem, loop.problem
    assert "IcmpOutRateLimitHost" in loop.problem and "none comes back" in loop.problem, loop.problem
    assert loop.facts.get("time_exceeded_from") is None and loop.facts["time_exceeded_held"] is True, loop.facts
    assert "TTL" in v.reason and "more than" not in v.reason, v.reason


def test_the_step_limit_is_never_hidden_behind_an_earlier_rows_problem():
    """The walk's own "more than 64 steps" line is its outcome's reason even when an earlier row has a problem
    (here: the stray route's detour), in text and in JSON."""
    k, m, c = looped()
    Walker.MAX_STEPS, was = 12, Walker.MAX_STEPS
    try:
        w = walk(k, m, "ml-a", Flow.icmp(None, c, 4242))
    finally:
        Walker.MAX_STEPS = was
    v = explain(w)
    assert w.outcome == "loop" and "more than 12 steps" in (w.reason or ""), (w.outcome, w.reason)
    assert "more than 12 steps: a routing loop?" in v.reason, v.reason
