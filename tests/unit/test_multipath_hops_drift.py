"""A multipath route's hops as the kernel holds them, beside their gateways: each hop's weight and flags (QA
qa56d 2, 4). The gateway's route that balances a LoadBalancer IP is equal-cost, weight 1 a hop, through eth0;
`ip route replace ... nexthop via A dev eth0 weight 3 ...` skewed it (14 of 20 connections to one node) while
status said all as planned and up left it, since the weight was read and dropped; a hop moved to another device
was said `dev none (want eth0)`."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pyroute2.netlink.rtnl.rtmsg import rtmsg

from netlab.kernel import rtnl, rtnl_parse
from netlab.plan.resources import Route
from netlab.realize.diff import describe_difference
from netlab.realize.observe import _hop_quirks
from test_rtnl import encode

HOPS = ("192.168.122.2", "192.168.122.3", "192.168.122.4")


def route_msg(hops: list[dict]) -> rtnl_parse.RouteMsg:
    return rtnl_parse.parse_route(encode(
        rtmsg, rtnl.RTM_NEWROUTE, {"family": 2, "dst_len": 32, "table": 254, "proto": 3, "type": 1},
        [("RTA_DST", "203.0.113.101"), ("RTA_TABLE", 254), ("RTA_MULTIPATH", hops)]))


def hop(gw: str, oif: int = 2, weight: int = 1, flags: int = 0) -> dict:
    return {"oif": oif, "hops": weight - 1, "flags": flags, "attrs": [("RTA_GATEWAY", gw)]}


def planned() -> Route:
    return Route(netns="l-gateway", dst=IPv4Network("203.0.113.101/32"), gateway=None, dev="eth0",
                 nexthops=tuple(IPv4Address(gw) for gw in HOPS))


def test_each_hop_s_weight_and_flags_are_read():
    r = route_msg([hop(HOPS[0], weight=3), hop(HOPS[1], flags=rtnl.RTNH_F_ONLINK), hop(HOPS[2])])
    assert r.nexthops == ((HOPS[0], 2), (HOPS[1], 2), (HOPS[2], 2))
    assert r.hop_weights == ((3, 0), (1, rtnl.RTNH_F_ONLINK), (1, 0))


def test_equal_hops_through_one_device_are_as_planned():
    r = route_msg([hop(gw) for gw in HOPS])
    assert _hop_quirks(r, {2: "eth0"}, "eth0") == ()


def test_an_unequal_weight_is_drift_in_ip_route_s_words():
    r = route_msg([hop(HOPS[0], weight=3), hop(HOPS[1]), hop(HOPS[2])])
    quirks = _hop_quirks(r, {2: "eth0"}, "eth0")
    assert quirks == ("via 192.168.122.2 weight 3", "via 192.168.122.3", "via 192.168.122.4")
    want = planned()
    have = Route(netns=want.netns, dst=want.dst, gateway=None, dev="eth0", nexthops=want.nexthops, hop_quirks=quirks)
    assert have != want  # status: different, up replaces it
    assert describe_difference(want, have) == ("hops via 192.168.122.2 weight 3; via 192.168.122.3; via "
                                               "192.168.122.4 (want each of weight 1 through eth0)")


def test_a_hop_through_another_device_is_named_with_its_device_not_dev_none():
    r = route_msg([hop(HOPS[0]), hop(HOPS[1]), hop(HOPS[2], oif=3, flags=rtnl.RTNH_F_ONLINK)])
    quirks = _hop_quirks(r, {2: "eth0", 3: "inet0"}, None)
    assert quirks == ("via 192.168.122.2 dev eth0", "via 192.168.122.3 dev eth0",
                      "via 192.168.122.4 dev inet0 onlink")
    want = planned()
    have = Route(netns=want.netns, dst=want.dst, gateway=None, dev=None, nexthops=want.nexthops, hop_quirks=quirks)
    words = describe_difference(want, have)
    assert "dev none" not in words and words == ("hops via 192.168.122.2 dev eth0; via 192.168.122.3 dev eth0; via "
                                                 "192.168.122.4 dev inet0 onlink (want each of weight 1 through eth0)")


def test_the_plan_s_json_has_no_quirks():
    assert "hop_quirks" not in planned().to_json()
