"""A link set down, with a fake kernel (no root): the hop trace blames is that link, not where the packet died.

The kernel takes a link's routes with it when the link is set down (its address stays): a node whose cni0 is
down has no route to its own pod CIDR, and routes its pods' packets down its default route to the underlay's
gateway, which has no route to pods and drops them. trace blamed that gateway ("net.ipv4.ip_forward = 0 in
the underlay") alone; the fault, and its fix, is the node's cni0, named there as why the packet came (as for a
missing pod-CIDR route). A VXLAN packet whose outer route is gone (the
node's eth0 down) is dropped by the VXLAN device that wrapped it: its row named device "-".
"""

from __future__ import annotations

from types import SimpleNamespace

from netlab.trace import faults
from netlab.trace.facts import LinkFacts, RouteFailure
from netlab.trace.flow import Flow
from netlab.trace.render import render_text
from netlab.trace.verdict import explain, mark_seen
from netlab.trace.walk import Walker, walk
from test_trace_walk import _result, _seen_everywhere, ping, world  # noqa: F401  (the fixture)

N1, N2 = "demo-minikube", "demo-minikube-m02"


def _underlay_does_not_forward(k):
    """The underlay's router has no route to pods (the real one: ip_forward = 0 there, `No route to host`)."""
    route_get = k.route_get

    def answer(netns, dst, src=None, iif=None):
        if netns == "demo-underlay" and dst.startswith("10.244."):
            raise RouteFailure(113, "No route to host")
        return route_get(netns, dst, src=src, iif=iif)
    k.route_get = answer


def test_the_destination_nodes_cni0_down_is_named_where_the_underlay_drops_it(world):  # noqa: F811
    _, m, k = world
    _underlay_does_not_forward(k)
    k.down.add((N2, "cni0"))  # ip -n demo-minikube-m02 link set cni0 down
    w = ping(k, m)
    # The kernel really sends it on: out of minikube-m02's eth0 to the underlay's gateway, which drops it.
    mark_seen(w.hops, _seen_everywhere(w), {h.netns for h in w.hops})
    link = next(h for h in w.hops if h.kind == "link")
    assert (link.netns, link.device, link.cause) == (N2, "cni0", False)
    assert link.problem.startswith(f"cni0 in {N2} is down, and a link set down loses its routes")
    after = w.hops[w.hops.index(link) + 1]
    assert (after.netns, after.device, after.kind) == (N2, "eth0", "route")  # the route it really took
    v = explain(w)
    # lost where it died, as a missing pod-CIDR route's packet is (tests/unit/test_trace_lost_at_the_gateway.py)
    assert w.hops[v.lost_at] is w.hops[-1] and w.hops[-1].netns == "demo-underlay"
    assert v.reason.startswith("no route to 10.244.1.3 in demo-underlay: No route to host; it came here because "
                               f"cni0 in {N2} is down, and a link set down loses its routes: the route to "
                               "10.244.1.0/24 (the subnet of cni0's 10.244.1.1/24, minikube-m02's own pod CIDR)")
    assert v.fix == f"ip -n {N2} link set cni0 up"
    text = render_text(_result(w))
    assert f"result: LOST at hop {w.hops[-1].index} (demo-underlay " in text


def test_a_node_whose_own_cni0_is_down_sends_to_its_pods_by_the_default_route(world):  # noqa: F811
    """The source side: the node itself (or a pod of another node, whose packet it forwards) to its own pod."""
    _, m, k = world
    _underlay_does_not_forward(k)
    k.down.add((N1, "cni0"))
    w = walk(k, m, N1, Flow.icmp(None, "10.244.0.2", 1))
    v = explain(w)
    assert (w.hops[v.lost_at].netns, w.hops[v.lost_at].device) == (N1, "cni0")
    assert v.fix == f"ip -n {N1} link set cni0 up"
    # A pod of that node: its frame reaches a port of a bridge that is down (unchanged, and still right).
    w = ping(k, m)
    v = explain(w)
    assert (w.hops[v.lost_at].device, v.fix) == ("cni0", f"ip -n {N1} link set cni0 up")
    assert v.reason == f"bridge cni0 in {N1} is down: it forwards nothing from its ports"


def test_an_encapsulated_packet_without_an_outer_route_is_dropped_on_its_vxlan_device(world):  # noqa: F811
    _, m, k = world
    k.down.add((N1, "eth0"))  # ip -n demo-minikube link set eth0 down: no route to the other node's address
    w = ping(k, m)
    last = w.hops[-1]
    assert (last.netns, last.device, last.kind) == (N1, "flannel.1", "drop")  # it said "-"
    assert "eth0 is down there" in last.problem and "counted in its TX errors" in last.problem
    assert f"ip -n {N1} -s link show flannel.1" in last.commands
    # The link up does not bring back the default route that went with it: the fix puts it back too.
    assert last.fix == f"ip -n {N1} link set eth0 up && ip -n {N1} route add default via 192.168.122.1 dev eth0"


def test_route_gone_with_link_only_for_a_wider_route_and_a_down_link():
    links = {"cni0": LinkFacts("cni0", 3, "bridge", None, 1450, False, addresses=("10.244.1.1/24",)),
             "eth0": LinkFacts("eth0", 2, "veth", None, 1500, True, addresses=("192.168.122.7/24",))}
    k = SimpleNamespace(links=lambda ns: links)
    lab = SimpleNamespace(node_pod_cidrs={"m02": ("n2", "10.244.1.0/24")})

    def gone(dst, matched):
        return faults.route_gone_with_link(k, lab, "n2", dst, "eth0", matched)
    dev, why, fix = gone("10.244.1.3", "default via 192.168.122.1 dev eth0")
    assert dev == "cni0" and "m02's own pod CIDR" in why and fix == "ip -n n2 link set cni0 up"
    # A route as specific as the link's subnet, or an address outside it, is not the down link's doing.
    assert gone("10.244.1.3", "10.244.1.0/24 via 1.2.3.4 dev eth0") is None
    assert gone("10.244.2.3", "default via 192.168.122.1 dev eth0") is None
    links["cni0"] = LinkFacts("cni0", 3, "bridge", None, 1450, True, addresses=("10.244.1.1/24",))
    assert gone("10.244.1.3", "default via 192.168.122.1 dev eth0") is None


def test_a_pod_whose_eth0_is_down_names_eth0_on_its_first_row(world):  # noqa: F811
    """The pod's eth0 set down takes all its routes (`ip -j route` in the pod: []): `ip route get` answers
    "Network is unreachable" and the socket's packet leaves by no device. The row named device "-"; the kernel
    has one device there that explains it, eth0, down."""
    _, m, k = world
    src = "demo-fedora-1"
    k.down.add((src, "eth0"))  # ip -n demo-fedora-1 link set eth0 down: its routes go with it
    w = ping(k, m)
    [row] = w.hops
    assert (row.netns, row.device, row.kind) == (src, "eth0", "drop")
    assert row.decision == "route get 10.244.1.3: Network is unreachable (eth0 is down: no route left through it)"
    assert row.facts == {"error": "Network is unreachable", "up": False}
    assert f"ip -n {src} link show eth0" in row.commands
    assert "eth0 is down there" in row.problem and row.fix.startswith(f"ip -n {src} link set eth0 up")
    text = render_text(_result(w))
    assert f"result: LOST at hop 1 ({src} eth0): no route to 10.244.1.3 in {src}: Network is unreachable" in text


def test_no_route_with_every_link_up_still_names_no_device(world):  # noqa: F811
    """A route deleted by hand, every link up: the kernel picked no device, and the row says none."""
    _, m, k = world
    src = "demo-fedora-1"
    k.no_route.update({(src, "10.244.0.0/16"), (src, "0.0.0.0/0")})
    [row] = ping(k, m).hops
    assert (row.device, row.facts) == ("-", {"error": "Network is unreachable"})


def test_a_doomed_packets_vxlan_drop_keeps_the_devices_words_in_its_own_part(world):  # noqa: F811
    """A packet a fault earlier on the way doomed (Walker._doomed: a node's missing route, a link down) and that a
    VXLAN device then drops for want of an outer route: the row's own words (CameHere.own, which verdict.explain
    says where the packet ended in) hold the VXLAN device's, and the problem is own + "; it came here because" +
    the earlier fault. The device's words were appended after the parts were taken: after the earlier fault's
    words in the problem, and missing from own."""
    _, m, k = world
    k.down.add((N1, "eth0"))  # no outer route to the other node's address
    walker = Walker(k, m)
    walker._doomed = ("an earlier node's fault", "its fix")
    w = walker.walk("demo-fedora-1", Flow.icmp(None, "10.244.1.3", 7))
    last = w.hops[-1]
    assert (last.netns, last.device, last.kind) == (N1, "flannel.1", "drop")
    assert last.came_here is not None and last.came_here.because == "an earlier node's fault", last
    assert last.came_here.own.endswith("(the VXLAN device flannel.1 drops the packet it wrapped, counted in its "
                                       "TX errors)"), last.came_here
    assert "eth0 is down there" in last.came_here.own
    assert last.problem == str(last.came_here) and last.problem.endswith("; it came here because an earlier "
                                                                         "node's fault"), last.problem
    assert last.fix == "its fix" and f"ip -n {N1} -s link show flannel.1" in last.commands
