"""rp-filter-strict's fault, as trace must tell it: a node routes a peer's pod CIDR straight over the underlay to
that peer (Flannel's DirectRouting on one side only), and the peer, whose route back leaves by flannel.1, has strict
rp_filter. The packet is lost at the peer's eth0 by rp_filter, the sysctl's fix first and the route's with it.

It said the packet was lost at the route, "a detour through a node, which masquerades the pod traffic it forwards
and drops as INVALID a reply to a flow whose start it never saw": false for the destination's own node (it
delivers to its pods without NAT and saw the flow's start), and the rp_filter drop was a nested parenthesis.
"""

from __future__ import annotations

import errno

from netlab.plan.build import build_plan
from netlab.trace.facts import RouteFacts, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import walk
from test_trace_astray import Tables, world as astray_world
from test_trace_walk import _seen_everywhere

RP = "net.ipv4.conf.all.rp_filter"


class Asymmetric(Tables):
    """Routes straight over the underlay (``ip route replace CIDR via NODE dev eth0``), and strict rp_filter."""

    def __init__(self, lab, plan):
        super().__init__(lab, plan)
        self.direct: dict[tuple[str, str], str] = {}  # (netns, cidr) -> the node address it goes via, dev eth0
        self.strict: set[str] = set()  # netns with net.ipv4.conf.all.rp_filter = 1

    def _lookup(self, netns, dst, src=None, iif=None):
        ans = super().route_get(netns, dst, src, iif)
        cidr = (ans.matched or "").split()[0]
        gw = self.direct.get((netns, cidr))
        if gw is None:
            return ans
        return RouteFacts("unicast", "eth0", gw, ans.prefsrc, matched=f"{cidr} via {gw} dev eth0")

    def route_get(self, netns, dst, src=None, iif=None):
        if iif and src and netns in self.strict and self._lookup(netns, src).oif != iif:
            raise RouteFailure(errno.EINVAL, "Invalid argument")  # the route back leaves by another interface
        return self._lookup(netns, dst, src, iif)

    def sysctl(self, netns, key):
        if key == RP:
            return "1" if netns in self.strict else "0"
        return super().sysctl(netns, key)


def setup():
    lab, m, _ = astray_world("vxlan")
    k = Asymmetric(lab, build_plan(lab))
    a_ip, cidr = str(lab.node("a").ip), str(lab.node("a").pod_cidr)
    k.direct[("t3-b", cidr)] = a_ip  # b reaches a's pods straight over the underlay; a routes back by flannel.1
    return lab, m, k, a_ip, cidr


def test_strict_rp_filter_on_the_destinations_node_is_the_loss_and_the_route_its_cause():
    lab, m, k, a_ip, cidr = setup()
    k.strict.add("t3-a")
    x1, x2 = str(lab.pod("x1").ip), str(lab.pod("x2").ip)
    w = walk(k, m, "t3-x2", Flow.icmp(None, x1, 1))
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    drop = w.hops[-1]
    assert (w.outcome, drop.netns, drop.device) == ("stopped", "t3-a", "eth0"), drop
    v = explain(w)
    assert v.lost_at == len(w.hops) - 1, v
    assert v.reason is not None and v.reason.startswith(f"strict rp_filter ({RP} = 1) in t3-a: the packet from {x2} "
                                                        "came in on eth0, but the route back"), v.reason
    a_vtep = str(lab.node("a").vtep_ip)
    assert (f"; it came in there because the route to {cidr} (a's pod CIDR) in t3-b goes via {a_ip} (a) dev eth0, "
            f"but the plan's goes via {a_vtep} (a flannel.1) dev flannel.1: the packet goes straight to {a_ip} (a), "
            f"the node of {cidr} itself, and comes in by its eth0, not flannel.1") in v.reason, v.reason
    assert "masquerade" not in v.reason and "INVALID" not in v.reason, v.reason
    # the sysctl first (the drop), then the plan's route back (the asymmetry): one command line a shell runs
    assert v.fix == (f"ip netns exec t3-a sysctl -w {RP}=0 && "
                     f"ip -n t3-b route replace {cidr} via {a_vtep} dev flannel.1 onlink"), v.fix


def test_the_direct_route_alone_to_the_destinations_node_claims_no_masquerade():
    """rp_filter put back, the route left: delivered by a path the lab did not plan, said without the third
    node's masquerade and INVALID drop (the destination's own node does neither)."""
    lab, m, k, a_ip, cidr = setup()
    w = walk(k, m, "t3-x2", Flow.icmp(None, str(lab.pod("x1").ip), 1))
    assert w.outcome == "delivered", w.reason
    route = next(h for h in w.hops if h.netns == "t3-b" and h.kind == "route")
    assert route.facts.get("astray") and route.problem is not None
    assert route.problem.endswith("which that node drops if its rp_filter is strict"), route.problem
    assert "masquerade" not in route.problem and "INVALID" not in route.problem
    # Via a third node (c), the words about its masquerade and its INVALID drop stay.
    k.direct[("t3-b", cidr)] = str(lab.node("c").ip)
    w = walk(k, m, "t3-x2", Flow.icmp(None, str(lab.pod("x1").ip), 1))
    route = next(h for h in w.hops if h.netns == "t3-b" and h.kind == "route")
    assert route.problem is not None and "a node, which masquerades the pod traffic it forwards" in route.problem
