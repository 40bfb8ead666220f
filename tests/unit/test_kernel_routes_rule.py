"""The kernel's routes for an address (netlab/plan/kernel_routes.py): one rule, which status expects
(realize/diff.py) and the fake kernel makes (kernel/fake_objects.py). The fake made its own: a route for a limited
broadcast brd (255.255.255.255) and for a 0.0.0.0/8 prefix's broadcast, which the kernel never makes and status
would have called extra."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from netlab.kernel.fake_objects import FLink, FNetns
from netlab.plan import kernel_routes
from netlab.plan.address import Address


def addr(text: str, dev: str = "eth0", **kw) -> Address:
    return Address(netns="kr", dev=dev, address=IPv4Interface(text), **kw)


def words(routes) -> list[str]:
    return sorted(f"{r.type or 'unicast'} {r.dst} table {r.table or 254}" for r in routes)


@pytest.mark.parametrize("a, up, lo, made", [
    (addr("10.244.0.1/24", broadcast=IPv4Address("10.244.0.255")), True, False,
     ["broadcast 10.244.0.255/32 table 255", "local 10.244.0.1/32 table 255", "unicast 10.244.0.0/24 table 254"]),
    (addr("10.244.0.1/24"), False, False, ["local 10.244.0.1/32 table 255"]),  # down: its local route only
    (addr("10.0.0.1/31"), True, False, ["local 10.0.0.1/32 table 255", "unicast 10.0.0.0/31 table 254"]),
    (addr("10.0.0.1/32"), True, False, ["local 10.0.0.1/32 table 255"]),
    (addr("127.0.0.1/8", dev="lo"), True, True, ["broadcast 127.255.255.255/32 table 255",
                                                  "local 127.0.0.0/8 table 255", "local 127.0.0.1/32 table 255"]),
    (addr("10.1.0.1/24", broadcast=IPv4Address("255.255.255.255")), True, False,  # a limited broadcast brd: none
     ["broadcast 10.1.0.255/32 table 255", "local 10.1.0.1/32 table 255", "unicast 10.1.0.0/24 table 254"]),
    (addr("0.0.0.1/24"), True, False, ["local 0.0.0.1/32 table 255", "unicast 0.0.0.0/24 table 254"]),
    (addr("10.2.0.1/24", noprefixroute=True), True, False,
     ["broadcast 10.2.0.255/32 table 255", "local 10.2.0.1/32 table 255"]),
])
def test_the_fake_kernel_makes_what_status_expects(a, up, lo, made):
    rule = ([kernel_routes.connected_route(a)] if kernel_routes.makes_connected(a, up, lo) else []) + \
        kernel_routes.local_routes(a, up, lo)
    assert words(rule) == made
    ns = FNetns(name="kr", links={a.dev: FLink(a.dev, 2, "loopback" if lo else "veth", 1500, "02:00:00:00:00:01", up)},
                addrs=[a])
    assert words(ns.made_connected()) == made


def test_older_kernels_and_secondary_addresses():
    a = addr("10.244.0.1/24")
    assert words(kernel_routes.local_routes(a, True, False, older=True)) == [
        "broadcast 10.244.0.0/32 table 255", "broadcast 10.244.0.255/32 table 255", "local 10.244.0.1/32 table 255"]
    assert words(kernel_routes.local_routes(a, True, False, secondary=True)) == ["local 10.244.0.1/32 table 255"]
    assert not kernel_routes.makes_connected(a, True, False, secondary=True)
