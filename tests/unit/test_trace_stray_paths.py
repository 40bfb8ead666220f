"""trace on multi-node labs whose path strays from the plan: a deleted VXLAN device, an FDB entry naming the
wrong node, a host-gw route via a third node (which masquerades the pods' packets it forwards), an extra route more
specific than the plan's, which overrides it."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from netlab.plan.build import build_plan
from netlab.plan.resources import Route
from netlab.trace.facts import CtEntry, FdbFacts, RouteFacts
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.labmap import LabMap
from netlab.trace.render import TraceResult, number, render_text
from netlab.trace.later import Later
from netlab.trace.verdict import explain, mark_seen, nat_between_pods
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, _seen_everywhere, lab_from


def three_nodes(mode: str) -> str:
    return f"""name: t3
network: {{mode: {mode}, underlay: {{cidr: 192.168.78.0/24, mtu: 1500}}}}
nodes: [{{name: a}}, {{name: b}}, {{name: c}}]
pods: [{{name: x1, node: a}}, {{name: x2, node: b}}, {{name: x3, node: c}}]
"""


class Kernel(FakeKernel):
    """The fake kernel, with a device deleted, FDB remotes and route next hops changed."""

    def __init__(self, lab, plan):
        super().__init__(lab, plan)
        self.fdb_dst: dict[tuple[str, str, str], str] = {}  # (netns, dev, mac) -> the remote it names now
        self.via: dict[tuple[str, str], str] = {}  # (netns, dst cidr) -> the gateway its route names now
        # (netns, dst cidr) -> (gateway, device): a route added by hand, matched where it is the longest prefix
        self.extra: dict[tuple[str, str], tuple[str | None, str]] = {}

    def delete(self, ns: str, dev: str) -> None:
        """`ip link del`: the device, its addresses and its routes are gone."""
        self._links[ns].pop(dev)
        self.addrs.pop((ns, dev), None)
        self.no_route |= {(ns, str(r.dst)) for r in self.plan.resources if isinstance(r, Route) and r.netns == ns
                          and r.dev == dev}

    def fdb(self, netns):
        return [replace(e, dst=self.fdb_dst.get((netns, e.dev, e.lladdr), e.dst)) if isinstance(e, FdbFacts) else e
                for e in super().fdb(netns)]

    def route_get(self, netns, dst, src=None, iif=None):
        ans = super().route_get(netns, dst, src, iif)
        cidr = (ans.matched or "").split()[0]
        for (ns, net), (gw, dev) in self.extra.items():
            if ns == netns and IPv4Address(dst) in IPv4Network(net) and ans.type == "unicast" \
                    and IPv4Network(net).prefixlen > IPv4Network(cidr).prefixlen:
                via = f" via {gw}" if gw else ""
                return RouteFacts("unicast", dev, gw, ans.prefsrc, matched=f"{net}{via} dev {dev}")
        if cidr == "0.0.0.0/0":  # as the kernel names it
            return replace(ans, matched=f"default via {ans.gateway} dev {ans.oif}")
        gw = self.via.get((netns, cidr))
        if gw is None:
            return ans
        return RouteFacts(ans.type, ans.oif, gw, ans.prefsrc, matched=f"{cidr} via {gw} dev {ans.oif}")


def world(mode: str):
    lab = lab_from(three_nodes(mode))
    plan = build_plan(lab)
    m = LabMap.from_lab(lab, plan)
    m.repair = "sudo netlab up -t t3.yaml"
    return lab, m, Kernel(lab, plan)


def test_a_deleted_vxlan_device_is_blamed_and_repaired_by_up_not_by_a_route_through_it():
    """The route's fix through the missing device failed: `Cannot find device "flannel.1"`."""
    lab, m, k = world("vxlan")
    k.delete("t3-c", "flannel.1")
    w = walk(k, m, "t3-x3", Flow.icmp(None, str(lab.pod("x1").ip), 1))
    last = w.hops[-1]
    # out of c's eth0 by the default route (its row says why), lost at the underlay's gateway, which routes it no
    # further: that row says where it ended, and why it came there, with c's fix
    assert w.outcome == "stopped" and last.netns == "t3-underlay", last
    [row] = [h for h in w.hops if h.netns == "t3-c" and h.problem]
    assert (row.kind, row.device, row.facts["missing_route"]) == ("route", "eth0", True), row
    for h in (row, last):
        assert "flannel.1, the device the overlay route goes out of, is missing there" in h.problem, h.problem
        assert "the overlay route is missing" not in h.problem and h.fix == m.repair


def test_vxlan_packets_to_a_node_without_its_device_are_fixed_by_the_repair():
    lab, m, k = world("vxlan")
    k.delete("t3-c", "flannel.1")
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    last = w.hops[-1]
    assert (last.netns, last.kind) == ("t3-c", "decap"), last
    assert last.problem.endswith("no VXLAN device listens there: the kernel drops it (flannel.1, the lab's VXLAN "
                                 "device there, is missing)"), last.problem
    assert last.fix == m.repair


def test_an_fdb_entry_naming_another_node_is_blamed_on_its_row_and_fixed_by_replacing_its_remote():
    """It was blamed only where b dropped the frame: a's FDB row, where the mistake is, had no mark."""
    lab, m, k = world("vxlan")
    mac = lab.node("c").vxlan_mac
    b_ip, c_ip = str(lab.node("b").ip), str(lab.node("c").ip)
    k.fdb_dst[("t3-a", "flannel.1", mac)] = b_ip
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    fix = f"bridge -n t3-a fdb replace {mac} dev flannel.1 dst {c_ip} self permanent"
    fdb = next(h for h in w.hops if h.kind == "fdb")
    assert fdb.netns == "t3-a" and fdb.cause and fdb.fix == fix, fdb
    assert fdb.problem == f"node a's FDB entry for {mac} on flannel.1 sends the frame to {b_ip} (b), the plan's to " \
        f"{c_ip} (c)", fdb.problem
    # The drop on b is still there, said as the entry's consequence.
    last = w.hops[-1]
    assert (last.netns, last.device, last.kind) == ("t3-b", "flannel.1", "arrive"), last
    assert last.problem.endswith(f"the kernel drops it, the consequence of node a's FDB entry for {mac} on "
                                 f"flannel.1, which sends it here, not to {c_ip} (c) as the plan's does"), last.problem
    assert last.fix is None  # the fix is on a's row
    v = explain(w)
    assert v.lost_at == w.hops.index(fdb) and v.fix == fix, v
    assert v.reason == f"{fdb.problem} (it went on as it was and was lost in t3-b flannel.1: {last.problem})"
    k.fdb_dst.clear()  # with the plan's remote, the same frame is b's no more: no claim about a's entry
    w = walk(k, m, "t3-x1", Flow.icmp(None, str(lab.pod("x3").ip), 1))
    assert w.outcome == "delivered" and not any(h.problem for h in w.hops)


def _detour(m: LabMap, k: Kernel, lab) -> tuple[str, str, str]:
    """b routes a's pod CIDR via c (a wrong next hop), and c masquerades what it forwards (Flannel's rule)."""
    a_ip, c_ip = str(lab.node("a").ip), str(lab.node("c").ip)
    k.via[("t3-b", str(lab.node("a").pod_cidr))] = c_ip
    x1, x2 = str(lab.pod("x1").ip), str(lab.pod("x2").ip)
    k.ct["t3-c"] = [CtEntry(Flow.icmp(x2, x1, 1), Flow.icmp(x1, c_ip, 1))]
    return a_ip, c_ip, x1


def test_a_route_via_another_node_than_the_plans_is_blamed_with_the_plans_route_back():
    lab, m, k = world("host-gw")
    a_ip, c_ip, x1 = _detour(m, k, lab)
    w = walk(k, m, "t3-x2", Flow.icmp(None, x1, 1))
    route = next(h for h in w.hops if h.netns == "t3-b" and h.kind == "route")
    cidr = str(lab.node("a").pod_cidr)
    assert route.problem.startswith(f"the route to {cidr} (a's pod CIDR) in t3-b goes via {c_ip} (c) dev eth0, but "
                                    f"the plan's goes via {a_ip} (a) dev eth0: the packet takes a detour through "
                                    f"{c_ip} (c), a node, which masquerades"), route.problem
    assert route.fix == f"ip -n t3-b route replace {cidr} via {a_ip} dev eth0"
    k.via.clear()
    assert not any(h.problem for h in walk(k, m, "t3-x2", Flow.icmp(None, x1, 1)).hops)


def test_a_pod_to_pod_packet_delivered_masqueraded_breaks_the_no_nat_rule_and_fails():
    lab, m, k = world("host-gw")
    a_ip, c_ip, x1 = _detour(m, k, lab)
    w = walk(k, m, "t3-x2", Flow.icmp(None, x1, 1))
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    assert w.outcome == "delivered" and w.final is not None and w.final.src == c_ip
    r = TraceResult(lab="t3", src={"name": "x2", "ip": str(lab.pod("x2").ip)}, dst={"name": "x1", "ip": x1},
                    proto="icmp", port=None, marker="m", forward=w, reply=None, verdict=explain(w),
                    reply_verdict=None, reply_received=True, repair_later=Later(m.repair))
    number(r)
    # Before the NAT is judged, the detour alone fails it: the packet arrived by a path the lab did not plan.
    route = next(h for h in w.hops if h.netns == "t3-b" and h.kind == "route")
    assert not r.ok and r.astray is not None and r.astray["hop"] == route.index, r.astray
    r.nat = nat_between_pods(w, str(lab.pod("x2").ip), "t3-x2", m.names)
    snat = next(h for h in w.hops if h.kind == "snat")
    assert r.nat is not None and r.nat["hop"] == snat.index and r.nat["source"] == c_ip
    assert r.nat["fix"] == f"ip -n t3-b route replace {lab.node('a').pod_cidr} via {a_ip} dev eth0"
    assert not r.ok and r.to_json()["nat"] == r.nat
    text = render_text(r)
    assert (f"NAT: x1 got the packet from {c_ip}, not from {lab.pod('x2').ip}: node c (t3-c) masqueraded it at hop "
            f"{snat.index} on the way; the Kubernetes network model's rule that pods reach pods without NAT is "
            "broken") in text, text
    assert f"  fix: {r.nat['fix']}   (or: {m.repair}, which repairs the lab)" in text
    # To a Service's address DNATed to x1 (kube-proxy masquerades some such flows by design): not judged.
    assert nat_between_pods(w, str(lab.pod("x2").ip), "t3-x2", m.names, "10.96.0.10") is None
    assert nat_between_pods(w, str(lab.pod("x2").ip), "t3-x2", m.names, x1) is not None
    # The same source at both ends: no NAT to speak of.
    k.via.clear()
    k.ct.clear()
    w = walk(k, m, "t3-x2", Flow.icmp(None, x1, 1))
    assert nat_between_pods(w, str(lab.pod("x2").ip), "t3-x2", m.names) is None


def test_an_extra_route_more_specific_than_the_plans_via_a_third_node_is_blamed_and_deleted():
    """b's 10.244.0.0/25 via c overrides the plan's /24 via a: the next-hop check compared only routes to the same
    CIDR, so the detour (and c's masquerade) was blamed on nothing."""
    lab, m, k = world("host-gw")
    a_ip, c_ip = str(lab.node("a").ip), str(lab.node("c").ip)
    x1, x2 = str(lab.pod("x1").ip), str(lab.pod("x2").ip)
    k.extra[("t3-b", "10.244.0.0/25")] = (c_ip, "eth0")
    k.ct["t3-c"] = [CtEntry(Flow.icmp(x2, x1, 1), Flow.icmp(x1, c_ip, 1))]
    w = walk(k, m, "t3-x2", Flow.icmp(None, x1, 1))
    route = next(h for h in w.hops if h.netns == "t3-b" and h.kind == "route")
    assert route.problem.startswith(f"the route to {x1} in t3-b is 10.244.0.0/25, a route the plan does not have "
                                    "(status calls it extra), more specific than the plan's route to 10.244.0.0/24 "
                                    f"(a's pod CIDR), which it overrides: it goes via {c_ip} (c) dev eth0, but the "
                                    f"plan's goes via {a_ip} (a) dev eth0: the packet takes a detour through {c_ip} "
                                    "(c), a node, which masquerades"), route.problem
    assert route.fix == f"ip -n t3-b route del 10.244.0.0/25 via {c_ip} dev eth0"
    nat = nat_between_pods(w, x2, "t3-x2", m.names)
    assert nat is not None and nat["fix"] == route.fix and nat["cause"] == route.problem, nat
    # The same extra route via the plan's next hop sends the packet the plan's way: nothing to blame on it.
    k.extra[("t3-b", "10.244.0.0/25")] = (a_ip, "eth0")
    k.ct.clear()
    assert not any(h.problem for h in walk(k, m, "t3-x2", Flow.icmp(None, x1, 1)).hops)


def test_an_extra_route_more_specific_than_the_overlays_out_of_eth0_is_blamed_and_deleted():
    """vxlan: a's 10.244.2.0/25 dev eth0 overrides the plan's route to c's pod CIDR via flannel.1; the packet is
    lost where no one answers a's ARP for x3 on the underlay, but the route is why."""
    lab, m, k = world("vxlan")
    x3 = str(lab.pod("x3").ip)
    k.extra[("t3-a", "10.244.2.0/25")] = (None, "eth0")
    k.no_neigh[("t3-a", "eth0", x3)] = "FAILED"
    w = walk(k, m, "t3-x1", Flow.icmp(None, x3, 1))
    route = next(h for h in w.hops if h.netns == "t3-a" and h.kind == "route")
    c_vtep = str(lab.node("c").vtep_ip)
    assert route.problem == (f"the route to {x3} in t3-a is 10.244.2.0/25, a route the plan does not have (status "
                             "calls it extra), more specific than the plan's route to 10.244.2.0/24 (c's pod CIDR), "
                             f"which it overrides: it goes directly dev eth0, but the plan's goes via {c_vtep} (c "
                             "flannel.1) dev flannel.1"), route.problem
    assert route.fix == "ip -n t3-a route del 10.244.2.0/25 dev eth0"
    v = explain(w)
    assert w.outcome == "stopped" and v.lost_at == w.hops.index(route) and v.fix == route.fix, v


def _row(device: str, direction: str, seen: bool) -> Hop:
    flow = Flow.icmp("10.244.1.2", "10.244.0.2", 1)
    return Hop("t3-c", "node c", device, "route", "d", observe=Observe("t3-c", device, direction, flow, "reply"),
               seen=seen)


def test_a_packet_seen_coming_in_and_not_going_out_of_one_device_says_which_way():
    """It read "seen on t3-c eth0, never on t3-c eth0"."""
    w = Walk([_row("eth0", "in", True), _row("eth0", "out", False)], "delivered")
    reason = explain(w).reason or ""
    assert reason.startswith("seen arriving on t3-c eth0, never leaving by t3-c eth0; "), reason
    w = Walk([_row("cni0", "in", True), _row("eth0", "out", False)], "delivered")
    assert (explain(w).reason or "").startswith("seen on t3-c cni0, never on t3-c eth0; ")
