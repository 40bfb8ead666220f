"""The fake kernel's routes when a device goes down, as the real kernel keeps them (no root).

What the real kernel shows (`ip route show table all` after `ip link set va down`; the same ops on a real
namespace: tests/integration/test_fake_kernel_routes.py): every route through va is gone, in every table, a
route given by its gateway alone included (the kernel put it on va, whose connected route reaches that
gateway), and so is va's connected route; the local route of va's address stays. Set up again, va gets its
connected route back, and none of the others.
"""

from __future__ import annotations

import errno
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from netlab.kernel.base import KernelError, Op
from netlab.kernel.fake import FakeKernel
from netlab.plan.resources import Address, Route, Veth

A, B = "trqf-a", "trqf-b"
VETH = Veth(netns=A, name="va", mtu=1500, mac="02:00:00:00:00:0a", peer_netns=B, peer_name="eth0",
            peer_mac="02:00:00:00:00:0b")
GW = IPv4Address("10.9.0.254")


def routes_ops() -> list[Op]:
    """va with 10.9.0.1/24 and a route of each kind through it."""
    def route(dst: str, **kw) -> Op:
        return Op("replace", Route(**{"netns": A, "dst": IPv4Network(dst), "gateway": None, "dev": "va", **kw}))
    return [Op("add", Address(netns=A, dev="va", address=IPv4Interface("10.9.0.1/24"))),
            route("10.8.0.0/16", gateway=GW),
            route("10.7.0.0/16", gateway=GW, dev=None),  # by its gateway alone
            route("10.6.0.0/16", gateway=IPv4Address("1.2.3.4"), onlink=True),
            route("10.5.0.0/16", table=100, scope="link"),
            route("0.0.0.0/0", gateway=GW)]


def shown(k: FakeKernel, ns: str) -> set[tuple]:
    """(table, dst, gateway, device, type) of each route a dump shows."""
    snap = k.snapshot(ns, tables=False)
    names = {link.index: name for name, link in snap.links.items()}
    return {(r.table, f"{r.dst}/{r.dst_len}", r.gateway, names.get(r.oif), r.type) for r in snap.routes}


@pytest.fixture
def k() -> FakeKernel:
    k = FakeKernel()
    for ns in (A, B):
        k.create_netns(ns, "t", [])
    k.apply([Op("add", VETH)] + routes_ops())
    return k


def test_a_route_by_its_gateway_alone_is_on_the_device_that_reaches_it(k):
    assert (254, "10.7.0.0/16", "10.9.0.254", "va", 1) in shown(k, A)
    with pytest.raises(KernelError) as err:  # no device reaches it: ENETUNREACH, as `ip route add` says
        k.apply([Op("replace", Route(netns=A, dst=IPv4Network("10.4.0.0/16"), gateway=IPv4Address("10.99.0.1"),
                                     dev=None))])
    assert err.value.code == errno.ENETUNREACH


def test_a_device_set_down_loses_every_route_through_it_and_keeps_its_local_route(k):
    k.apply([Op("set", replace(VETH, up=False), old=VETH)])
    lo = {(255, "127.0.0.1/32", None, "lo", 2), (255, "127.0.0.0/8", None, "lo", 2),
          (255, "127.255.255.255/32", None, "lo", 3)}
    assert shown(k, A) == {(255, "10.9.0.1/32", None, "va", 2)} | lo
    k.apply([Op("set", VETH, old=replace(VETH, up=False))])  # up again: its connected and broadcast routes come back
    assert shown(k, A) == {(254, "10.9.0.0/24", None, "va", 1), (255, "10.9.0.1/32", None, "va", 2),
                           (255, "10.9.0.255/32", None, "va", 3)} | lo
