"""The internet gateway's route for a LoadBalancer IP held against the plan's (strayroutes.balancer_route): a route
that sends an outside client to a node the plan does not (externalTrafficPolicy Local: a node with no endpoint of
the Service's) is the cause trace names, with the plan's multipath route as the fix; the node's drop stays the row
where the packet ended (verdict.explain)."""

from __future__ import annotations

from dataclasses import replace

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.hops import CameHere, Hop, Walk
from netlab.trace.labmap import LabMap
from netlab.trace.strayroutes import balancer_route
from netlab.trace.verdict import explain
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, lab_from

LB = "203.0.113.100"
TOPO = f"""name: lb3
nodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]
internet:
  hosts: [{{name: ext, ip: 203.0.113.50}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-3, node: n3, labels: {{app: web}}}}
services:
  - name: clu
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {{app: web}}
    loadBalancerIP: {LB}
    ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def _map():
    lab = lab_from(TOPO)
    return lab, LabMap.from_lab(lab, build_plan(lab))


def test_the_plan_knows_the_gateways_multipath_route_to_the_nodes_with_an_endpoint():
    lab, m = _map()
    n1, _, n3 = (str(n.ip) for n in lab.nodes)
    assert m.planned_route_hops[("lb3-gateway", f"{LB}/32")] == (n1, n3)


def test_a_route_to_a_node_the_plan_does_not_route_to_is_named_with_the_plans_route_back():
    lab, m = _map()
    n1, n2, n3 = (str(n.ip) for n in lab.nodes)
    why, fix = balancer_route(m, "lb3-gateway", n2, (), "eth0", f"{LB} via {n2} dev eth0")
    assert why == (f"the gateway's route for {LB} sends it to n2, which the plan does not: the route's hops are n2 "
                   "(want n1, n3)")
    assert fix == f"ip -n lb3-gateway route replace {LB}/32 nexthop via {n1} dev eth0 nexthop via {n3} dev eth0"
    # a multipath route with an extra hop, which this packet's hash picked
    why, _ = balancer_route(m, "lb3-gateway", n2, (n1, n2), "eth0", f"{LB} nexthop via {n1} dev eth0 ...")
    assert why.endswith("the route's hops are n1, n2 (want n1, n3)"), why


def test_the_plans_route_or_a_hop_of_the_plans_is_no_cause():
    lab, m = _map()
    n1, n2, n3 = (str(n.ip) for n in lab.nodes)
    assert balancer_route(m, "lb3-gateway", n3, (n1, n3), "eth0", f"{LB} nexthop via {n1} ...") is None
    # pinned to n1 by hand: this packet still goes to a node with an endpoint
    assert balancer_route(m, "lb3-gateway", n1, (), "eth0", f"{LB} via {n1} dev eth0") is None
    # not the gateway, or not a route of the plan's /32s
    assert balancer_route(m, "lb3-n1", n2, (), "eth0", f"{LB} via {n2} dev eth0") is None
    assert balancer_route(m, "lb3-gateway", n2, (), "eth0", "192.168.122.0/24 dev eth0 proto kernel") is None


def test_the_verdict_blames_the_gateways_route_and_says_where_the_node_dropped_it():
    route = Hop("lb3-gateway", "internet gateway", "eth0", "route", "route get ...", problem="the gateway's route "
                "for X sends it to n2", fix="ip -n lb3-gateway route replace ...",
                facts={"astray": True, "lb_route_drift": True}, seen=True)
    came = CameHere("no endpoint on n2", route.problem)
    drop = Hop("lb3-n2", "node n2", "eth0", "dnat", "no DNAT ...", problem=str(came), fix=route.fix, cause=True,
               facts={"dropped_here": True, "no_local_endpoints": True}, came_here=came)
    assert drop.problem == "no endpoint on n2; it came here because the gateway's route for X sends it to n2"
    v = explain(Walk([route, drop], "stopped", reason="dropped"))
    assert not v.delivered and v.lost_at == 0, v
    assert v.reason == ("the gateway's route for X sends it to n2 (it went on as it was and was lost in lb3-n2 eth0: "
                        "no endpoint on n2)"), v.reason
    assert v.fix == route.fix


class _RoutedToN2(FakeKernel):
    """The gateway's route for the LoadBalancer IP replaced by hand: to n2 alone, which has no endpoint."""

    def route_get(self, netns, dst, src=None, iif=None, l4=None):
        ans = super().route_get(netns, dst, src, iif, l4)
        if (netns, dst) == ("lb3-gateway", LB):
            n2 = str(self.lab.node("n2").ip)
            return replace(ans, gateway=n2, hops=(), matched=f"{LB} via {n2} dev eth0")
        return ans


def test_the_nodes_drop_row_keeps_its_own_words_and_the_gateways_route_apart():
    """The drop row's problem says why the packet came to n2 after its own words; the walker keeps the two parts
    on the row (Hop.came_here), which the verdict names the node's drop by, and the JSON does not show."""
    lab = lab_from(TOPO)
    plan = build_plan(lab)
    w = walk(_RoutedToN2(lab, plan), LabMap.from_lab(lab, plan), "lb3-ext", Flow("tcp", None, LB, 40000, 80))
    route = next(h for h in w.hops if h.netns == "lb3-gateway" and h.kind == "route")
    drop = w.hops[-1]
    assert (drop.netns, drop.kind, drop.facts["no_local_endpoints"]) == ("lb3-n2", "dnat", True), drop
    assert drop.came_here is not None and drop.came_here.because == route.problem, drop.came_here
    own = drop.came_here.own
    assert own.startswith("Service default/clu:http has externalTrafficPolicy Local and no endpoint on n2"), own
    assert drop.problem == f"{own}; it came here because {route.problem}", drop.problem
    assert drop.fix == route.fix
    out = drop.to_json()
    assert "came_here" not in out and out["problem"] == drop.problem, out
    assert not any("came_here" in h.to_json() for h in w.hops)
    v = explain(w)
    assert v.lost_at == w.hops.index(route) and v.reason == f"{route.problem} (it went on as it was and was lost in " \
        f"lb3-n2 eth0: {own})", v.reason
