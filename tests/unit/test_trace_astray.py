"""A packet that arrives by a path the lab did not plan fails the trace; a pod's routes are held against the plan
as a node's are.

- A host-gw route via a third node, an FDB entry naming another node that forwarded the frame on: the packet was
  delivered, its `!!` row shown, and trace exited 0 (the README's exit 1 is for drift that checks found).
- A pod's own routes were never checked: an extra route in a pod (through its node's bridge to a pod of the same
  node, via another next hop, a blackhole) was blamed on nothing, or on "no route ... Invalid argument" with no fix.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from netlab.plan.build import build_plan
from netlab.trace.facts import RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.picture import title
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.later import Later
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_stray_paths import Kernel
from test_trace_walk import _seen_everywhere, lab_from

ERRORS = {"blackhole": (errno.EINVAL, "Invalid argument"), "unreachable": (errno.EHOSTUNREACH, "No route to host"),
          "prohibit": (errno.EACCES, "Permission denied")}


def topology(mode: str) -> str:
    return f"""name: t3
network: {{mode: {mode}, underlay: {{cidr: 192.168.78.0/24, mtu: 1500}}}}
nodes: [{{name: a}}, {{name: b}}, {{name: c}}]
pods: [{{name: x1, node: a}}, {{name: x2, node: b}}, {{name: x3, node: c}}, {{name: x4, node: a}}]
"""


class Tables(Kernel):
    """The stray-path fake kernel, with routes that refuse (`ip route add blackhole|unreachable|prohibit CIDR`)
    and the main table listed as `ip route` lists it."""

    def __init__(self, lab, plan):
        super().__init__(lab, plan)
        self.refusing: dict[tuple[str, str], str] = {}  # (netns, cidr) -> blackhole | unreachable | prohibit

    def route_get(self, netns, dst, src=None, iif=None):
        hit = [(IPv4Network(c), t) for (ns, c), t in self.refusing.items()
               if ns == netns and IPv4Address(dst) in IPv4Network(c)]
        if hit:
            raise RouteFailure(*ERRORS[max(hit, key=lambda x: x[0].prefixlen)[1]])
        ans = super().route_get(netns, dst, src, iif)
        if iif and ans.type != "local" and self.sysctl(netns, "net.ipv4.ip_forward") == "0":
            raise RouteFailure(errno.EHOSTUNREACH, "No route to host")  # as the kernel answers where it may not forward
        gw = self.via.get((netns, "0.0.0.0/0"))
        if gw is not None and (ans.matched or "").startswith("default"):  # `ip route replace default via GW`
            return replace(ans, gateway=gw, matched=f"default via {gw} dev {ans.oif}")
        return ans

    forwarding = True  # False: pods do not forward (net.ipv4.ip_forward = 0 in theirs), nodes do

    def sysctl(self, netns, key):
        pod = any(p.netns == netns for p in self.lab.pods)
        return "0" if key == "net.ipv4.ip_forward" and pod and not self.forwarding else None

    def routes(self, netns):
        out = [{"dst": str(r.dst), "type": "unicast", "text": r.command().split(" route add ", 1)[1]}
               for r in self.plan.resources if type(r).__name__ == "Route" and r.netns == netns
               and (netns, str(r.dst)) not in self.refusing]
        return out + [{"dst": c, "type": t, "text": f"{t} {c}"} for (ns, c), t in self.refusing.items() if ns == netns]


def world(mode: str = "host-gw"):
    lab = lab_from(topology(mode))
    plan = build_plan(lab)
    m = LabMap.from_lab(lab, plan)
    m.repair = "sudo netlab up -t t3.yaml"
    return lab, m, Tables(lab, plan)


def result(lab, m, w, src: str, dst: str) -> TraceResult:
    """The trace of walk ``w`` as run.py makes it, every row seen and the reply received."""
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    ips = {p.name: str(p.ip) for p in lab.pods} | {n.name: str(n.ip) for n in lab.nodes}
    r = TraceResult(lab="t3", src={"name": src, "ip": ips[src]}, dst={"name": dst, "ip": ips[dst]}, proto="icmp",
                    port=None, marker="m", forward=w, reply=None, verdict=explain(w), reply_verdict=None,
                    reply_received=True, repair_later=Later(m.repair))
    number(r)
    return r


def test_a_nodes_packet_delivered_by_a_route_via_a_third_node_fails_and_says_it_went_astray():
    lab, m, k = world()
    a_ip, c_ip, x1 = str(lab.node("a").ip), str(lab.node("c").ip), str(lab.pod("x1").ip)
    k.via[("t3-b", str(lab.node("a").pod_cidr))] = c_ip
    w = walk(k, m, "t3-b", Flow.icmp(None, x1, 1))
    r = result(lab, m, w, "b", "x1")
    route = w.hops[0]
    assert route.kind == "route" and route.problem and route.facts.get("astray"), route
    fix = f"ip -n t3-b route replace 10.244.0.0/24 via {a_ip} dev eth0"
    assert r.verdict.delivered and r.nat is None and not r.ok, r
    assert r.astray == {"hop": 1, "label": "1", "direction": "forward", "netns": "t3-b", "device": "eth0",
                        "text": "x1 got the packet, but by a path the lab did not plan: astray at hop 1 (t3-b eth0)",
                        "reason": route.problem, "fix": fix}, r.astray
    data = r.to_json()
    assert data["astray"] == r.astray and data["ok"] is False and data["delivered"] is True
    text = render_text(r)
    assert "\nresult: delivered to x1, but NOT by the planned path (astray at hop 1); reply received\n" in text, text
    assert f"\nastray: {r.astray['text']}: {route.problem}\n  fix: {fix}   (or: {m.repair}, which repairs the " \
        "lab)\n" in text, text
    assert title(r).endswith(": delivered, ASTRAY at hop 1 (not the planned path)")
    # The plan's route back: the same trace passes.
    k.via.clear()
    r = result(lab, m, walk(k, m, "t3-b", Flow.icmp(None, x1, 1)), "b", "x1")
    assert r.ok and r.astray is None and r.to_json()["astray"] is None
    assert "NOT by the planned path" not in render_text(r) and "ASTRAY" not in title(r)


def test_an_fdb_entry_naming_a_node_that_forwards_the_frame_on_is_delivered_astray():
    """b holds c's VTEP MAC as well (a frame for it is b's to take), and routes the packet on to c: x3 gets it.
    It was 'lost' at a's FDB row, 'delivered to t3-x3 itself, where no endpoint is'."""
    lab, m, k = world("vxlan")
    mac, b_ip, c_ip = lab.node("c").vxlan_mac, str(lab.node("b").ip), str(lab.node("c").ip)
    k.fdb_dst[("t3-a", "flannel.1", mac)] = b_ip
    k._links["t3-b"]["flannel.1"] = replace(k._links["t3-b"]["flannel.1"], mac=mac)
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    assert w.outcome == "delivered" and w.end_netns == "t3-x3", w.reason
    r = result(lab, m, w, "x1", "x3")
    fdb = next(h for h in w.hops if h.kind == "fdb" and h.netns == "t3-a")
    assert r.verdict.delivered and r.verdict.reason is None, r.verdict
    assert not r.ok and r.astray is not None and r.astray["hop"] == fdb.index, r.astray
    assert r.astray["fix"] == f"bridge -n t3-a fdb replace {mac} dev flannel.1 dst {c_ip} self permanent"
    assert f"(astray at hop {fdb.index})" in render_text(r)


def test_a_pods_extra_route_through_its_nodes_bridge_to_a_pod_of_the_same_node_is_blamed_and_deleted():
    lab, m, k = world()
    x4, gw = str(lab.pod("x4").ip), str(lab.node("a").gateway.ip)
    k.extra[("t3-x1", f"{x4}/32")] = (gw, "eth0")
    w = walk(k, m, "t3-x1", Flow.icmp(None, x4, 1))
    route = w.hops[0]
    assert (route.netns, route.kind) == ("t3-x1", "route") and w.outcome == "delivered", w.hops
    assert route.problem == (f"the route to {x4} in t3-x1 is {x4}/32, a route the plan does not have (status calls "
                             "it extra), more specific than the plan's route to 10.244.0.0/24 (a's pod CIDR), which "
                             f"it overrides: it goes via {gw} (a cni0) dev eth0, but the plan's goes directly dev "
                             f"eth0: the packet takes a detour through {gw} (a cni0)"), route.problem
    assert route.fix == f"ip -n t3-x1 route del {x4}/32 via {gw} dev eth0"
    r = result(lab, m, w, "x1", "x4")
    assert not r.ok and r.astray is not None and r.astray["fix"] == route.fix and r.nat is None
    k.extra.clear()
    w = walk(k, m, "t3-x1", Flow.icmp(None, x4, 1))
    assert not any(h.problem for h in w.hops) and result(lab, m, w, "x1", "x4").ok
    assert not [h for h in w.hops if h.kind == "route" and h.netns == "t3-a"]  # switched by cni0, never routed


def test_a_pods_route_to_the_cluster_via_another_next_hop_is_blamed_with_the_plans_route_back():
    lab, m, k = world()
    x2, x4, gw = str(lab.pod("x2").ip), str(lab.pod("x4").ip), str(lab.node("a").gateway.ip)
    k.via[("t3-x1", "10.244.0.0/16")] = x4  # a pod, which forwards as its node does
    w = walk(k, m, "t3-x1", Flow.icmp(None, x2, 1))
    route = w.hops[0]
    assert route.problem is not None and route.problem.startswith(
        f"the route to 10.244.0.0/16 in t3-x1 goes via {x4} (x4) dev eth0, but the plan's goes via {gw} (a cni0) dev "
        f"eth0: the packet takes a detour through {x4} (x4)"), route.problem
    assert route.fix == f"ip -n t3-x1 route replace 10.244.0.0/16 via {gw} dev eth0"
    # x4 set not to forward: lost there, but blamed on x1's route (it was blamed on x4's ip_forward, with its sysctl).
    k.forwarding = False
    w = walk(k, m, "t3-x1", Flow.icmp(None, x2, 1))
    last = w.hops[-1]
    assert last.netns == "t3-x4" and last.problem and "ip_forward = 0" in last.problem, w.hops
    assert "in t3-x4: the pod x4 does not forward, so" in last.problem, last.problem  # was "the node"
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    v = explain(w)
    assert not v.delivered and v.lost_at == 0 and v.fix == route.fix, v
    assert v.reason == f"{route.problem} (it went on as it was and was lost in t3-x4 eth0: {last.problem})", v.reason


def test_a_pods_default_route_via_another_next_hop_is_blamed():
    lab, m, k = world()
    x4, gw = str(lab.pod("x4").ip), str(lab.node("a").gateway.ip)
    k.via[("t3-x1", "0.0.0.0/0")] = x4
    w = walk(k, m, "t3-x1", Flow.icmp(None, "10.96.0.10", 1))
    assert w.hops[0].fix == f"ip -n t3-x1 route replace default via {gw} dev eth0", w.hops[0]
    k.via[("t3-b", "0.0.0.0/0")] = str(lab.node("c").ip)  # a node's default route is not held against the plan
    assert not walk(k, m, "t3-b", Flow.icmp(None, "192.168.78.1", 1)).hops[0].problem


def test_a_blackhole_in_a_pod_is_blamed_with_the_route_that_deletes_it():
    """It read "no route to 10.244.1.2 in t3-x1: Invalid argument", with no fix."""
    lab, m, k = world()
    x2 = str(lab.pod("x2").ip)
    for kind, (_, message) in ERRORS.items():
        k.refusing = {("t3-x1", "10.244.1.0/24"): kind}
        for flow in (Flow.icmp(None, x2, 1), Flow("tcp", str(lab.pod("x1").ip), x2, 40000, 80)):
            w = walk(k, m, "t3-x1", flow)
            last = w.hops[-1]
            assert w.outcome == "stopped" and last.netns == "t3-x1", w.hops
            assert last.problem is not None and last.problem.startswith(
                f"the route to {x2} in t3-x1 is `{kind} 10.244.1.0/24`, a route the plan does not have (status calls "
                "it extra), which it overrides (the plan's route to 10.244.0.0/16 goes via 10.244.0.1 (a cni0) dev "
                f"eth0): the kernel "), last.problem
            assert last.problem.endswith(f"(route get says: {message})"), last.problem
            assert last.fix == f"ip -n t3-x1 route del {kind} 10.244.1.0/24"
            v = explain(w)
            assert not v.delivered and v.fix == last.fix
    # In the place of the plan's own route: the plan's put back.
    k.refusing = {("t3-x1", "10.244.0.0/16"): "blackhole"}
    last = walk(k, m, "t3-x1", Flow.icmp(None, x2, 1)).hops[-1]
    assert last.problem is not None and last.problem.startswith(
        "the route to 10.244.0.0/16 in t3-x1 is `blackhole 10.244.0.0/16`, not the plan's route, which goes via "
        "10.244.0.1 (a cni0) dev eth0: the kernel drops the packet without a word"), last.problem
    assert last.fix == "ip -n t3-x1 route replace 10.244.0.0/16 via 10.244.0.1 dev eth0"
