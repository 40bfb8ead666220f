"""The kernel's local-table routes of the lab's addresses are the lab's too (QA 62k #1: `ip -n L-n1 route del local
192.168.122.2 dev eth0 table local` made n1 drop what came to its own address, VXLAN from n2 among it; `... del local
10.244.0.1 dev cni0 table local` killed the pods' gateway; a hand's `ip route add local 10.244.1.0/24 dev lo table
local proto kernel` swallowed n2's pods: status said all as planned, observe.py left every proto kernel route outside
the main table out). Each planned address there as planned has its local route (and, its link up, its broadcast
one); one missing or different is drift that up puts back, one no address explains is extra, which up deletes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from fake_lab import make_lab, status, up

from netlab.kernel.fake import FakeKernel
from netlab.plan.resources import Address, Link, Loopback, Route
from netlab.realize.diff import diff_local, local_routes
from netlab.realize.observe import Observed

lab = pytest.fixture(make_lab, name="lab")


def local(ns: str, dst: str, dev: str, src: str | None, type: str = "local", **kw) -> Route:
    return Route(netns=ns, dst=IPv4Network(dst), gateway=None, dev=dev, table=255, proto="kernel",
                 scope="host" if type == "local" else "link", type=type, src=IPv4Address(src) if src else None, **kw)


def observed(*objects) -> Observed:
    obs = Observed(netns="x")
    for r in objects:
        obs.add(r)
    return obs


def addr(dev: str, address: str, brd: str | None = None, **kw) -> Address:
    return Address(netns="x", dev=dev, address=IPv4Interface(address), broadcast=IPv4Address(brd) if brd else None,
                   **kw)


def link(name: str, up: bool = True) -> Link:
    return Link(netns="x", name=name, mtu=1500, mac="", up=up)


def test_the_routes_the_kernel_makes_for_an_address_as_measured_on_6_18():
    cni0 = addr("cni0", "10.244.0.1/24", "10.244.0.255")
    vtep = addr("flannel.1", "10.244.0.0/32")
    bare = addr("eth1", "10.8.0.1/24")  # no brd: the kernel makes the subnet's broadcast route all the same
    lo = Address(netns="x", dev="lo", address=IPv4Interface("127.0.0.1/8"), scope="host")
    obs = observed(link("cni0"), link("flannel.1"), link("eth1"), Loopback(netns="x"), cni0, vtep, bare, lo)
    assert local_routes([cni0, vtep, bare, lo], obs) == [
        local("x", "10.244.0.1/32", "cni0", "10.244.0.1"),
        local("x", "10.244.0.255/32", "cni0", "10.244.0.1", type="broadcast"),
        local("x", "10.244.0.0/32", "flannel.1", "10.244.0.0"),  # a /32 of its own prefix: no broadcast
        local("x", "10.8.0.1/32", "eth1", "10.8.0.1"),
        local("x", "10.8.0.255/32", "eth1", "10.8.0.1", type="broadcast"),
        local("x", "127.0.0.1/32", "lo", "127.0.0.1"),
        local("x", "127.0.0.0/8", "lo", "127.0.0.1"),  # lo's prefix: local, not a connected route
        local("x", "127.255.255.255/32", "lo", "127.0.0.1", type="broadcast")]


def test_a_link_down_keeps_only_the_local_route_and_a_secondary_address_no_subnet_broadcast():
    a = addr("eth1", "10.8.0.1/24", "10.8.0.255")
    assert local_routes([a], observed(link("eth1", up=False), a)) == [local("x", "10.8.0.1/32", "eth1", "10.8.0.1")]
    second = addr("eth1", "10.8.0.2/24")
    obs = observed(link("eth1"), a, second)
    obs.secondary.add(second.key)
    assert local_routes([second], obs) == []  # not the plan's as planned (its src is its primary's)
    explained = {(r.key, r.dev) for r in local_routes([second], obs, planned=False)}
    assert explained == {(local("x", "10.8.0.2/32", "eth1", None).key, "eth1")}


def test_an_address_not_there_as_planned_expects_nothing_and_the_kernel_s_others_need_an_address():
    a = addr("eth1", "10.8.0.1/24", "10.8.0.255")
    obs = observed(link("eth1"), addr("eth1", "10.8.0.1/24", "10.8.0.127"))  # another brd: the address differs
    assert local_routes([a], obs) == []
    stray = local("x", "10.244.1.0/24", "lo", None)
    obs.local[(stray.key, "lo")] = stray
    mine = local("x", "10.8.0.1/32", "eth1", "10.8.0.1")
    obs.local[(mine.key, "eth1")] = mine
    assert [(d.state, d.resource) for d in diff_local([a], obs)] == [("extra", stray)]


def test_the_network_address_broadcast_route_of_kernels_before_5_14_is_the_kernels():
    """Kernels before 5.14 (Debian 11, Ubuntu 20.04) also make ``broadcast 10.244.0.0 dev cni0`` and ``broadcast
    127.0.0.0 dev lo`` for a primary prefix under /31: a fresh lab there was drift, and up deleted them (rev62).
    Neither expected (6.18 makes none) nor extra."""
    cni0 = addr("cni0", "10.244.0.1/24", "10.244.0.255")
    lo = Address(netns="x", dev="lo", address=IPv4Interface("127.0.0.1/8"), scope="host")
    obs = observed(link("cni0"), Loopback(netns="x"), cni0, lo)
    for r in local_routes([cni0, lo], obs):
        obs.local[(r.key, r.dev)] = r
    assert diff_local([cni0, lo], obs) == []
    for older in (local("x", "10.244.0.0/32", "cni0", "10.244.0.1", type="broadcast"),
                  local("x", "127.0.0.0/32", "lo", "127.0.0.1", type="broadcast")):
        obs.local[(older.key, older.dev)] = older
    assert diff_local([cni0, lo], obs) == []
    stray = local("x", "10.244.1.0/32", "cni0", "10.244.0.1", type="broadcast")  # not cni0's network
    obs.local[(stray.key, stray.dev)] = stray
    assert [(d.state, d.resource) for d in diff_local([cni0, lo], obs)] == [("extra", stray)]


def test_local_routes_deleted_are_missing_and_up_puts_them_back(lab):
    k = FakeKernel()
    up(lab, k)
    n1, a = k.ns["fk-n1"], k.ns["fk-a"]
    mine = local("fk-n1", "192.168.122.215/32", "eth0", "192.168.122.215")
    gateway = local("fk-n1", "10.244.0.1/32", "cni0", "10.244.0.1")
    brd = local("fk-a", "10.244.0.255/32", "eth0", "10.244.0.2", type="broadcast")
    assert mine in n1.all_routes() and gateway in n1.all_routes() and brd in a.all_routes()
    n1.change_route("del", mine)
    n1.change_route("del", gateway)
    a.change_route("del", brd)
    assert sorted(status(lab, k).drift) == sorted([
        "missing: route local 192.168.122.215/32 dev eth0 table local proto kernel scope host src 192.168.122.215 "
        "in fk-n1",
        "missing: route local 10.244.0.1/32 dev cni0 table local proto kernel scope host src 10.244.0.1 in fk-n1",
        "missing: route broadcast 10.244.0.255/32 dev eth0 table local proto kernel scope link src 10.244.0.2 "
        "in fk-a"])
    k.log.clear()
    up(lab, k)
    assert sorted(op.describe() for op in k.log) == sorted([
        f"add {mine.describe()}", f"add {gateway.describe()}", f"add {brd.describe()}"])
    assert status(lab, k).ok
    assert mine in n1.all_routes() and gateway in n1.all_routes() and brd in a.all_routes()


def test_a_hand_made_local_route_is_extra_and_up_deletes_it(lab):
    k = FakeKernel()
    up(lab, k)
    stray = local("fk-n1", "10.244.1.0/24", "lo", None)
    k.ns["fk-n1"].change_route("add", stray)
    assert status(lab, k).drift == [
        "extra: route local 10.244.1.0/24 dev lo table local proto kernel scope host in fk-n1"]
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [f"del {stray.describe()}"]
    assert status(lab, k).ok and stray not in k.ns["fk-n1"].all_routes()


def test_a_local_route_with_another_src_is_different_and_up_makes_it_again(lab):
    k = FakeKernel()
    up(lab, k)
    mine = local("fk-n1", "192.168.122.215/32", "eth0", "192.168.122.215")
    k.ns["fk-n1"].change_route("replace", local("fk-n1", "192.168.122.215/32", "eth0", "10.244.0.1"))
    [line] = status(lab, k).drift
    assert line.startswith(f"different: {mine.describe()}") and "src 10.244.0.1 (want 192.168.122.215)" in line
    k.log.clear()
    up(lab, k)
    assert [op.describe() for op in k.log] == [
        "del route local 192.168.122.215/32 dev eth0 table local proto kernel scope host src 10.244.0.1 in fk-n1",
        f"add {mine.describe()}"]
    assert status(lab, k).ok
