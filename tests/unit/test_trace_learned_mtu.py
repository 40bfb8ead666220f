"""trace --size with a path MTU the route lookup answers with (QA fl59 6).

After a router on the way answered a fragmentation needed, the sending pod's kernel keeps the path MTU it learned
(`ip route get 10.244.1.2` in the pod: `cache expires 96sec mtu 1300`) and refuses a bigger packet with DF itself
(EMSGSIZE, ping: "message too long"): it never leaves the pod. trace said the packet was lost at hop 1 or 2 with
"look at the firewall" / "no ARP entry ... it did not get here?". The route row now shows the learned MTU and says
the kernel refused the packet there; a route's own mtu does the same to a packet it sends, and a router whose
route has an mtu drops a bigger forwarded one with a fragmentation needed (a learned MTU it does not use there).
"""

from __future__ import annotations

from dataclasses import replace

from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel import rtnl
from netlab.trace import faults
from netlab.trace.verdict import explain
from test_trace_walk import ping, world  # noqa: F401  (the fixture)
from netlab.trace.walk import walk
from netlab.trace.flow import Flow

POD = "demo-fedora-1"
NODE = "demo-minikube"


def with_mtu(k, netns: str, mtu: int, expires: int | None) -> None:
    """The fake kernel's route lookups in ``netns`` answered with a path MTU (``expires``: a learned one)."""
    plain = k.route_get

    def route_get(ns, dst, src=None, iif=None, l4=None):
        ans = plain(ns, dst, src, iif, l4)
        if ns != netns or ans.type != "unicast":
            return ans
        matched = ans.matched if expires is not None else f"{ans.matched} mtu {mtu}"
        return replace(ans, mtu=mtu, mtu_expires=expires, matched=matched)

    k.route_get = route_get


def test_a_learned_path_mtu_refuses_the_packet_in_the_pod_itself(world):  # noqa: F811
    lab, m, k = world
    with_mtu(k, POD, 1300, 96)
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1350)
    first = w.hops[0]
    assert (first.netns, first.kind) == (POD, "route") and len(w.hops) == 1, [h.decision for h in w.hops]
    assert "path MTU 1300 (learned: cache expires 96sec mtu 1300)" in first.decision, first.decision
    assert first.facts["mtu"] == 1300 and first.facts["mtu_expires"] == 96
    assert first.problem == (f"{POD} has learned a path MTU of 1300 bytes to 10.244.1.3 (a router on the way "
                             "answered an earlier packet with an ICMP fragmentation needed): the packet is 1350 "
                             "bytes with DF set, so the kernel refuses to send it (message too long); it never "
                             "leaves")
    assert first.fix.startswith(f"ip -n {POD} route flush cache"), first.fix
    assert not faults.up_repairs(first.fix)  # no "(or: netlab up ..., which repairs the lab)": up flushes no cache
    v = explain(w)
    assert (v.delivered, v.lost_at, v.reason, v.fix) == (False, 0, first.problem, first.fix)
    assert "firewall" not in v.reason


def test_a_smaller_packet_goes_and_the_row_still_shows_the_mtu(world):  # noqa: F811
    lab, m, k = world
    with_mtu(k, POD, 1300, 96)
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1300)
    assert w.outcome == "delivered" and w.hops[0].problem is None
    assert w.hops[0].facts["mtu"] == 1300
    assert ping(k, m).outcome == "delivered"  # no --size: small, never too big


def test_a_route_s_own_mtu_refuses_what_the_pod_sends(world):  # noqa: F811
    lab, m, k = world
    with_mtu(k, POD, 1300, None)
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1350)
    first = w.hops[0]
    assert "mtu_expires" not in first.facts and "path MTU 1300 (the route's mtu)" in first.decision
    assert first.problem.startswith(f"the route 10.244.0.0/16 dev eth0 mtu 1300 in {POD} has mtu 1300: the packet "
                                    "is 1350 bytes with DF set, so the kernel refuses to send it"), first.problem
    assert first.fix == f"ip -n {POD} route replace 10.244.0.0/16 dev eth0", first.fix
    assert len(w.hops) == 1


def test_a_router_s_route_mtu_drops_a_forwarded_packet_with_a_fragmentation_needed(world):  # noqa: F811
    lab, m, k = world
    with_mtu(k, NODE, 1300, None)
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1350)
    last = w.hops[-1]
    assert (last.netns, last.kind, last.device) == (NODE, "route", "flannel.1"), [h.decision for h in w.hops]
    assert last.problem.endswith(f"so {NODE} drops it and answers an ICMP fragmentation needed (mtu 1300)")
    assert explain(w).lost_at == len(w.hops) - 1


def test_a_router_s_learned_mtu_is_not_what_it_forwards_by(world):  # noqa: F811
    """ip_dst_mtu_maybe_forward: a forwarded packet meets the route's mtu or the device's, not a learned one
    (net.ipv4.ip_forward_use_pmtu 0)."""
    lab, m, k = world
    with_mtu(k, NODE, 1300, 96)
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1350)
    assert w.outcome == "delivered", [h.problem for h in w.hops if h.problem]


def test_route_get_reads_the_learned_mtu_and_its_expiry(monkeypatch):
    """`ip route get 10.244.1.3` in a pod after a fragmentation needed: RTA_METRICS' RTAX_MTU and RTA_CACHEINFO's
    rta_expires, in USER_HZ ticks (`cache expires 96sec mtu 1300`)."""
    import test_trace_kernel as tk

    cache = {"rta_clntref": 0, "rta_lastuse": 0, "rta_expires": 9600, "rta_error": 0, "rta_used": 0, "rta_id": 0,
             "rta_ts": 0, "rta_tsage": 0}
    answer = tk.encode(rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 32, "table": 254, "type": 1,
                                                  "flags": 0x200},
                       [("RTA_DST", "10.244.1.3"), ("RTA_GATEWAY", "10.244.1.0"), ("RTA_OIF", 5),
                        ("RTA_PREFSRC", "10.244.0.0"), ("RTA_METRICS", {"attrs": [("RTAX_MTU", 1300)]}),
                        ("RTA_CACHEINFO", cache)])
    kernel = tk.kernel.__wrapped__(monkeypatch)
    sock = kernel.sock

    def route_get(m):
        flags = rtnl.RTMSG.unpack_from(m.body)[8]
        sock._answer(m.seq, [tk.ROUTES[2] if flags & rtnl.RTM_F_FIB_MATCH else answer], dump=False)

    monkeypatch.setattr(sock, "_route_get", route_get)
    ans = kernel.route_get(tk.NS, "10.244.1.3")
    assert (ans.mtu, ans.mtu_expires) == (1300, 96)
    assert ans.matched == "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"


def test_an_mtu_learned_from_the_packet_s_own_fragmentation_needed_is_not_why(world):  # noqa: F811
    """The walk reads the kernel after the packet: a router's fragmentation needed for this very packet taught the
    pod its MTU. The socket sent it (no EMSGSIZE): the pod's row shows the MTU, the router's route is why."""
    lab, m, k = world
    with_mtu(k, POD, 1300, 599)
    pod_route_get = k.route_get
    with_mtu(k, NODE, 1300, None)
    node_route_get = k.route_get
    k.route_get = lambda ns, *a, **kw: (pod_route_get if ns == POD else node_route_get)(ns, *a, **kw)
    k.sent_too_big = False
    w = walk(k, m, POD, Flow.icmp(None, "10.244.1.3", 7), size=1350)
    assert w.hops[0].problem is None and w.hops[0].facts["mtu"] == 1300
    v = explain(w)
    assert w.hops[v.lost_at].netns == NODE and "fragmentation needed (mtu 1300)" in v.reason, v
