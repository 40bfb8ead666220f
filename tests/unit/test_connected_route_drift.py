"""The kernel's connected routes of the lab's addresses are the lab's too (QA: `ip -n L-n1 route replace
10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1 mtu 1000` capped what a node's pods could send to the
other node's, `ip -n L-a route del 10.244.0.0/24` cut a pod from its node's subnet, while status said all as
planned and up changed nothing: observe.py left every proto kernel route out). Each address of the plan on an up
link, prefix under /32, has the route the kernel makes for it (main table, dev, scope link, src the address, no
metrics); one missing or different is drift, and up puts it back as the kernel made it (proto kernel). Where the
kernel makes none (the link down) none is expected; the local table's routes stay out of it."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from fake_lab import make_lab, status, up

from netlab.kernel.fake import FakeKernel
from netlab.plan.resources import Route

lab = pytest.fixture(make_lab, name="lab")

RTAX_MTU = 2


def connected(ns: str, dst: str, dev: str, src: str, **kw) -> Route:
    return Route(netns=ns, dst=IPv4Network(dst), gateway=None, dev=dev, proto="kernel", scope="link",
                 src=IPv4Address(src), **kw)


def test_a_connected_route_with_an_mtu_is_drift_and_up_puts_it_back(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-n1"].change_route("replace", connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1",
                                                    metrics=((RTAX_MTU, 1000),)))
    assert status(lab, k).drift == [
        "different: route 10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1 in fk-n1 "
        "(mtu 1000 (want none))"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [  # through its device: not another device's route of the prefix
        "del route 10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1 mtu 1000 in fk-n1",
        "add route 10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1 in fk-n1"]
    assert status(lab, k).ok
    assert connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1") in k.ns["fk-n1"].all_routes()


def test_a_pod_s_connected_route_deleted_is_missing_and_up_puts_it_back(lab):
    k = FakeKernel()
    up(lab, k)
    route = connected("fk-a", "10.244.0.0/24", "eth0", "10.244.0.2")
    assert route in k.ns["fk-a"].all_routes()
    k.ns["fk-a"].change_route("del", route)
    assert status(lab, k).drift == [
        "missing: route 10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.2 in fk-a"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [
        "add route 10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.2 in fk-a"]
    assert status(lab, k).ok and route in k.ns["fk-a"].all_routes()


def test_another_src_is_drift(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-a"].change_route("replace", replace(connected("fk-a", "10.244.0.0/24", "eth0", "10.244.0.2"),
                                                 scope="global", src=None))
    [line] = status(lab, k).drift
    assert line.startswith("different: route 10.244.0.0/24 dev eth0 proto kernel scope link src 10.244.0.2 in fk-a")
    assert "scope global (want link)" in line and "src none (want 10.244.0.2)" in line


def test_a_link_down_expects_no_connected_route(lab):
    """The kernel takes a down link's connected routes away and makes them again as it comes up: the link is the
    drift, up sets it up (and makes no route)."""
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-n1"].links["cni0"].up = False
    k._link_down(k.ns["fk-n1"], "cni0")
    drift = status(lab, k).drift
    assert drift and not [line for line in drift if "route 10.244.0.0/24 dev cni0" in line], drift
    k.log.clear()
    up(lab, k)
    assert not [op for op in k.log if isinstance(op.res, Route) and op.res.proto == "kernel"]
    assert status(lab, k).ok


def test_fake_kernel_connected_route_as_the_kernel_makes_it(lab):
    k = FakeKernel()
    up(lab, k)
    mine = [r for r in k.ns["fk-n1"].all_routes() if r.dev == "cni0" and r.table == 254]
    assert mine == [connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1")]


def test_noprefixroute_is_read_and_such_an_address_expects_no_route():
    """`ip addr add ... noprefixroute` (IFA_FLAGS, a u32 past ifa_flags' 8 bits): the kernel makes it no connected
    route, so none is expected (putting one back would leave it behind the address's deletion)."""
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from test_rtnl import encode

    from netlab.kernel import rtnl, rtnl_parse
    from netlab.plan.resources import Address, Link
    from netlab.realize.diff import connected_routes
    from netlab.realize.observe import Observed

    m = encode(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": 24, "index": 3},
               [("IFA_LOCAL", "10.244.0.1"), ("IFA_ADDRESS", "10.244.0.1"), ("IFA_FLAGS", 0x280)])
    assert rtnl_parse.parse_addr(m).flags & rtnl.IFA_F_NOPREFIXROUTE
    addr = Address(netns="x", dev="cni0", address=IPv4Interface("10.244.0.1/24"))
    obs = Observed(netns="x")
    obs.add(Link(netns="x", name="cni0", mtu=1500, mac="", up=True))
    obs.add(addr)
    assert connected_routes([addr], obs) == [connected("x", "10.244.0.0/24", "cni0", "10.244.0.1")]
    obs.no_route.add(addr.key)
    assert connected_routes([addr], obs) == []
    host = Address(netns="x", dev="cni0", address=IPv4Interface("10.244.0.9/32"))
    obs.add(host)
    assert connected_routes([host], Observed(netns="x", objects=dict(obs.objects))) == []


def test_up_watch_hears_a_connected_route_changed_or_deleted():
    """The watcher's notifications (kernel/events.py) say a main table's proto kernel route, and the local table's
    (the lab's too: realize/diff.diff_local) with their table."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    from test_rtnl import encode

    from netlab.kernel import events, rtnl

    def note(mtype: int, table: int) -> str | None:
        return events.describe(encode(rtmsg, mtype, {"family": 2, "dst_len": 24, "table": table, "proto": 2,
                                                     "scope": 253, "type": 1},
                                      [("RTA_DST", "10.244.0.0"), ("RTA_TABLE", table), ("RTA_OIF", 3),
                                       ("RTA_PREFSRC", "10.244.0.1")]))

    assert note(rtnl.RTM_NEWROUTE, 254) == "route 10.244.0.0/24 added"
    assert note(rtnl.RTM_DELROUTE, 254) == "route 10.244.0.0/24 deleted"
    assert note(rtnl.RTM_NEWROUTE, 255) == "route unicast 10.244.0.0/24 table local added"


def hand_address(k, ns: str, dev: str, address: str, first: bool = True, **kw) -> None:
    """``ip link add DEV type veth ...; ip addr add ADDRESS dev DEV`` by hand: its connected route listed first (as
    after the lab's link bounced, which appends the lab's route after it)."""
    from netlab.kernel.fake_objects import FLink
    from netlab.plan.resources import Address

    k.ns[ns].links[dev] = FLink(name=dev, index=90, kind="veth", mtu=1500, mac="02:00:00:00:00:90", up=True)
    a = Address(netns=ns, dev=dev, address=IPv4Interface(address), **kw)
    k.ns[ns].addrs.insert(0 if first else len(k.ns[ns].addrs), a)


def test_another_devices_connected_route_of_the_prefix_is_not_the_labs_route_differing(lab):
    """Each device's connected route is its own (observe.py kept one per table, dst, tos and metric: the other
    device's, listed first, made the lab's look "different", and up's replace took that one's place)."""
    k = FakeKernel()
    up(lab, k)
    hand_address(k, "fk-n1", "hand0", "10.244.0.200/24")
    routes = [r for r in k.ns["fk-n1"].all_routes() if r.dst == IPv4Network("10.244.0.0/24")]
    assert [r.dev for r in routes] == ["hand0", "cni0"]
    drift = status(lab, k).drift
    assert sorted(drift) == ["extra: address 10.244.0.200/24 on hand0 in fk-n1",
                             "extra: link hand0 in fk-n1 (link)"], drift


def test_a_hand_made_connected_route_through_another_device_is_extra_and_up_deletes_it_alone(lab):
    k = FakeKernel()
    up(lab, k)
    hand_address(k, "fk-n1", "hand0", "10.99.0.1/24")
    k.ns["fk-n1"].change_route("add", connected("fk-n1", "10.244.0.0/24", "hand0", "10.99.0.1"))
    k.ns["fk-n1"].routes.insert(0, k.ns["fk-n1"].routes.pop())
    drift = status(lab, k).drift
    assert "extra: route 10.244.0.0/24 dev hand0 proto kernel scope link src 10.99.0.1 in fk-n1" in drift, drift
    assert not [line for line in drift if "cni0" in line], drift
    k.log.clear()
    up(lab, k)
    assert "del route 10.244.0.0/24 dev hand0 proto kernel scope link src 10.99.0.1 in fk-n1" in [
        op.describe() for op in k.log]
    assert connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1") in k.ns["fk-n1"].all_routes()


def test_an_address_given_a_metric_is_the_drift_and_up_gives_it_the_planned_one_in_place(lab):
    """`ip addr replace 10.244.0.1/24 dev cni0 metric 50`: the kernel's connected route has metric 50. The address is
    the drift (status said the metric-0 route missing, and up added one beside the metric-50 one); up replaces it in
    place (RTM_NEWADDR with NLM_F_REPLACE: the kernel moves its connected route to metric 0, Linux 4.18 and later, the
    same that reports an address's metric), not by delete and add, which took the device's other routes and its ARP
    entries with it for a moment."""
    k = FakeKernel()
    up(lab, k)
    n1 = k.ns["fk-n1"]
    (cni0,) = [a for a in n1.addrs if a.dev == "cni0"]
    n1.addrs[n1.addrs.index(cni0)] = replace(cni0, metric=50)
    assert connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1", metric=50) in n1.all_routes()
    assert status(lab, k).drift == ["different: address 10.244.0.1/24 on cni0 in fk-n1 (metric 50 (want 0))"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == ["replace address 10.244.0.1/24 on cni0 in fk-n1"]
    assert status(lab, k).ok
    assert [r for r in n1.all_routes() if r.dev == "cni0" and r.table == 254] == [
        connected("fk-n1", "10.244.0.0/24", "cni0", "10.244.0.1")]


def test_an_addresss_metric_is_read_and_sent():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from test_rtnl import encode

    from netlab.kernel import netlink, rtnl, rtnl_parse

    m = encode(ifaddrmsg, rtnl.RTM_NEWADDR, {"family": 2, "prefixlen": 24, "index": 3},
               [("IFA_LOCAL", "10.244.0.1"), ("IFA_ADDRESS", "10.244.0.1"), ("IFA_RT_PRIORITY", 50)])
    assert rtnl_parse.parse_addr(m).metric == 50
    sent = rtnl.addr_add(3, "10.244.0.1", 24, metric=50)
    assert netlink.attrs(sent[16:], 8)[rtnl.IFA_RT_PRIORITY] == (50).to_bytes(4, "little")
