"""The source address of the ICMP port unreachable a REJECT answers with, as the kernel's icmp_send picks it (no root).

``__icmp_send``: the request's destination when that is the node's own (its route is local); else, with
net.ipv4.icmp_errors_use_inbound_ifaddr = 1 and a request the node routed in (an input route), an address of the
device it came in by (``inet_select_addr``: a primary one of at most link scope, on the client's subnet first, else
the first; a device without one lends another device's); else none, and the route back to the client picks it. A
node's own request (OUTPUT: an output route) and a frame its bridge switched (br_netfilter's fake route) are no
input route. A node's own request refused on its way out is answered to itself, through lo.
"""

from __future__ import annotations

from dataclasses import replace

from netlab.plan.build import build_plan
from netlab.trace.facts import InetAddress, LinkFacts
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.rejectanswer import policy_answers, select_address, start_rows, walk_answer
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


def inbound(k, on: str = "1") -> None:
    """net.ipv4.icmp_errors_use_inbound_ifaddr in every namespace of the fake kernel."""
    k.sysctl = lambda ns, key: on if key == "net.ipv4.icmp_errors_use_inbound_ifaddr" else None


def addr(k, ns: str, dev: str) -> str:
    return k.links(ns)[dev].addresses[0].split("/")[0]


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


def test_a_nodes_own_request_is_answered_from_its_own_source_whatever_inbound_ifaddr_says():
    """The node's own request was routed by an output route: icmp_errors_use_inbound_ifaddr does not apply, the
    route to its source (a local one) picks the source itself (measured: a request from cni0's address, sent out of
    eth0, is answered 10.244.0.1 > 10.244.0.1 with the sysctl 1); trace took eth0's address."""
    lab, m, k = build()
    inbound(k)
    gw = addr(k, "ra-n1", "cni0")
    request = Flow("tcp", gw, "10.96.0.40", 40000, 80)
    fwd, _ = traced(m, k, request, src="ra-n1")
    back = walk_answer(k, m, lab, fwd, refused=True)
    assert back is not None and back.final == Flow.unreachable(gw, gw, request), back.final


def test_with_inbound_ifaddr_a_forwarded_requests_answer_comes_from_the_device_it_came_in_by():
    """A policy's REJECT of a UDP datagram forwarded from flannel.1 to cni0 on n2: with the sysctl 1 the answer's
    source is flannel.1's address (measured, tcpdump in the client), not cni0's (the device the request was to go
    out by, which trace took)."""
    lab, m, k = build()
    inbound(k)
    a, c = str(lab.pod("a").ip), str(lab.pod("c").ip)
    k.no_neigh[("ra-n2", "cni0", c)] = None  # the REJECT dropped the request: n2 never asked for c's address
    fwd, _ = traced(m, k, Flow("udp", a, c, 40000, 5353), src="ra-a")
    back = walk_answer(k, m, lab, fwd, refused=True)
    vtep = addr(k, "ra-n2", "flannel.1")
    assert back is not None and back.final == Flow.unreachable(vtep, a, Flow("udp", a, c, 40000, 5353)), back.final
    assert back.end_netns == "ra-a"


def test_with_inbound_ifaddr_kube_proxys_reject_before_routing_answers_from_the_device_it_came_in_by():
    """kube-proxy's REJECT of a pod's request to a ClusterIP without endpoints (FORWARD, after the route lookup
    the walk's row comes before): the device the request came in by is cni0, whose address answers with the sysctl
    1, whatever n1's route back to the pod picks (measured: with `ip route add POD/32 dev cni0 src NODE-IP`, the
    answer comes from the node's address with the sysctl 0 and from cni0's with 1)."""
    lab, m, k = build()
    a, n1 = str(lab.pod("a").ip), str(lab.node("n1").ip)
    route_get = k.route_get

    def with_src(netns, dst, src=None, iif=None, l4=None):  # ip route add A/32 dev cni0 src N1
        got = route_get(netns, dst, src, iif, l4)
        return replace(got, prefsrc=n1) if (netns, dst) == ("ra-n1", a) else got

    k.route_get = with_src
    request = Flow("tcp", a, "10.96.0.40", 40000, 80)
    fwd, v = traced(m, k, request, src="ra-a")
    assert fwd.hops[v.lost_at].facts.get("iif") == "cni0", fwd.hops[v.lost_at].facts
    for on, src in (("0", n1), ("1", addr(k, "ra-n1", "cni0"))):
        inbound(k, on)
        back = walk_answer(k, m, lab, fwd, refused=True)
        assert back is not None and back.final == Flow.unreachable(src, a, request), (on, back.final)
        assert back.inbound == ("cni0" if on == "1" else None)
    r = result(fwd, back, v, proto="tcp")
    start_rows(r)
    assert f"from {src}, an address of cni0, the device the request came in by " \
           "(net.ipv4.icmp_errors_use_inbound_ifaddr = 1), to" in r.reply.hops[0].decision, r.reply.hops[0].decision


def test_a_bridged_frames_reject_is_answered_from_the_routes_pick_whatever_inbound_ifaddr_says():
    """A frame cni0 switched from d to c (br_netfilter's FORWARD) carries the bridge's fake route, no input route:
    the sysctl does not apply, even where the port it came in by has an address of its own."""
    lab, m, k = build()
    inbound(k)
    c, d = str(lab.pod("c").ip), str(lab.pod("d").ip)
    port = lab.pod("d").host_veth
    k._links["ra-n2"][port] = replace(k._links["ra-n2"][port], addresses=("192.0.2.1/24",))
    fwd, _ = traced(m, k, Flow("udp", d, c, 40000, 5353), src="ra-d")
    assert fwd.outcome == "delivered" and any(h.netns == "ra-n2" and h.kind == "bridge" for h in fwd.hops)
    k.policy_rejects = {"ra-n2": 1}
    answers = policy_answers(k, m, fwd)
    assert answers["ra-n2"].final == Flow.unreachable(addr(k, "ra-n2", "cni0"), d, fwd.final), answers["ra-n2"].final


def link(*addrs: InetAddress, name: str = "d") -> LinkFacts:
    return LinkFacts(name, 0, None, None, 1500, True, addresses=tuple(a.cidr for a in addrs), inet=addrs)


def test_select_address_is_the_kernels_inet_select_addr_at_link_scope():
    on_subnet, other = InetAddress("10.0.0.1/24"), InetAddress("192.0.2.1/24")
    assert select_address({"d": link(other, on_subnet)}, "d", "10.0.0.9") == "10.0.0.1"  # the client's subnet
    assert select_address({"d": link(other, on_subnet)}, "d", "198.51.100.7") == "192.0.2.1"  # else the first
    # a secondary address is never picked; nor one of host scope
    secondary = InetAddress("192.0.2.2/24", secondary=True)
    assert select_address({"d": link(other, secondary)}, "d", "192.0.2.9") == "192.0.2.1"
    host = InetAddress("10.1.0.1/24", scope=254)
    assert select_address({"d": link(host, other)}, "d", "10.1.0.9") == "192.0.2.1"
    # a device without one: the first other device's (in the namespace's order) of global scope, not lo's
    lo = link(InetAddress("127.0.0.1/8", scope=254), name="lo")
    scoped = link(InetAddress("169.254.0.1/16", scope=253), name="e")
    fallback = {"lo": lo, "e": scoped, "f": link(other, name="f"), "d": link()}
    assert select_address(fallback, "d", "10.0.0.9") == "192.0.2.1"
    assert select_address({"lo": lo, "d": link()}, "d", "10.0.0.9") is None
    # a link-scope address on the device itself does count there
    assert select_address({"e": scoped}, "e", "10.0.0.9") == "169.254.0.1"
    # known only as text (a kernel that does not say scope and flags): each a primary of global scope
    assert select_address({"g": LinkFacts("g", 0, None, None, 1500, True, addresses=("10.0.0.1/24",))}, "g",
                          "10.9.9.9") == "10.0.0.1"
