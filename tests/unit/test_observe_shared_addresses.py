"""observe() parses an address the lab's namespaces repeat (lo's 127.0.0.1/8, the default route, the node's gateway)
once: every namespace's resource holds the same immutable object, and compares as before."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from netlab.kernel import rtnl
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg, RouteMsg
from netlab.plan.resources import Address, Route
from netlab.realize.observe import observe


def _pod(ns: str, ip: str) -> Snapshot:
    links = {"lo": LinkMsg(1, "lo", None, True, 65536, "00:00:00:00:00:00", None, None, None, None, 0, 1000),
             "eth0": LinkMsg(2, "eth0", "veth", True, 1500, "02:00:00:00:00:02", None, 9, 0, None, 0, 1000)}
    addrs = [AddrMsg(1, "127.0.0.1", 8, None, rtnl.SCOPES["host"], "lo"),
             AddrMsg(2, ip, 24, "10.244.0.255", 0, "eth0")]
    routes = [RouteMsg(254, "0.0.0.0", 0, 0, "10.244.0.1", 2, rtnl.PROTOS["boot"], 0, 1, 0, None, None, False)]
    return Snapshot(netns=ns, links=links, addrs=addrs, routes=routes)


def _of(obs, kind):
    return [r for r in obs.objects.values() if isinstance(r, kind)]


def test_the_addresses_namespaces_repeat_are_one_object_each():
    a, b = observe(_pod("l-a", "10.244.0.2"), {}, {}), observe(_pod("l-b", "10.244.0.3"), {}, {})
    lo_a, eth0_a = sorted(_of(a, Address), key=lambda r: r.dev, reverse=True)
    lo_b, eth0_b = sorted(_of(b, Address), key=lambda r: r.dev, reverse=True)
    assert lo_a.address is lo_b.address and eth0_a.broadcast is eth0_b.broadcast
    (route_a,), (route_b,) = _of(a, Route), _of(b, Route)
    assert route_a.dst is route_b.dst and route_a.gateway is route_b.gateway
    assert eth0_a == Address(netns="l-a", dev="eth0", address=IPv4Interface("10.244.0.2/24"),
                             broadcast=IPv4Address("10.244.0.255"), scope="global")
    assert route_b == Route(netns="l-b", dst=IPv4Network("0.0.0.0/0"), gateway=IPv4Address("10.244.0.1"), dev="eth0")
