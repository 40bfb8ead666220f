"""The routes the kernel makes for an IPv4 address it is given (fib_add_ifaddr, measured on 6.18): one rule, which
status expects of the lab's addresses (realize/diff.py) and the fake kernel makes (kernel/fake_objects.py).

- the connected route in the main table (``10.244.0.0/24 dev cni0 proto kernel scope link src 10.244.0.1``, the
  address's metric), for a primary address under /32 without noprefixroute, on a link that is up and not ``lo``;
- in the local table, its local route (``local A dev D scope host src A``); while its link is up its broadcast
  (``brd``) one, and for a primary prefix under /31 the subnet's last address as broadcast (one route where they
  are the same); on ``lo`` its prefix as local (``local 127.0.0.0/8``). A limited broadcast brd
  (255.255.255.255) makes none, nor a prefix of network 0.0.0.0/8. Kernels before 5.14 also make a broadcast
  route for a primary prefix's network address (``broadcast 10.244.0.0 dev cni0``; "ip: Treat IPv4 segment's
  lowest address as unicast" dropped it): ``older``.

A secondary address (another of its subnet is before it) gets no connected route, nor its prefix's broadcast;
its local routes' src is then its primary's (callers judge those by key only).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from netlab.plan.address import Address
from netlab.plan.resources import Route

ALL_ONES = IPv4Address("255.255.255.255")  # a limited broadcast brd: the kernel makes no route for it
LOCAL_TABLE = 255


def makes_connected(a: Address, up: bool, loopback: bool, secondary: bool = False) -> bool:
    """Whether the kernel makes a connected route for address ``a`` on a link that is ``up`` (``loopback``: lo)."""
    return up and not loopback and not secondary and not a.noprefixroute and a.address.network.prefixlen < 32


def connected_route(a: Address) -> Route:
    """The connected route, as the kernel makes it: main table, the prefix through its device, scope link, src the
    address, proto kernel, its metric, no metrics."""
    return Route(netns=a.netns, dst=a.address.network, gateway=None, dev=a.dev, proto="kernel", scope="link",
                 src=a.address.ip, metric=a.metric)


def local_routes(a: Address, up: bool, loopback: bool, secondary: bool = False, older: bool = False) -> list[Route]:
    """The local table's routes the kernel makes for address ``a`` (the module's text)."""
    ip, net = a.address.ip, a.address.network
    mine = dict(netns=a.netns, gateway=None, dev=a.dev, table=LOCAL_TABLE, proto="kernel", src=ip)
    out = [Route(dst=IPv4Network(f"{ip}/32"), scope="host", type="local", **mine)]  # type: ignore[arg-type]
    if not up:
        return out
    brd = {a.broadcast} if a.broadcast and a.broadcast != ALL_ONES else set()
    if not secondary and int(net.network_address) >> 24 and (net.network_address != ip or net.prefixlen < 32):
        if loopback and not a.noprefixroute:
            out.append(Route(dst=net, scope="host", type="local", metric=a.metric, **mine))  # type: ignore[arg-type]
        if net.prefixlen < 31:
            brd |= {net.broadcast_address, net.network_address} if older else {net.broadcast_address}
    return out + [Route(dst=IPv4Network(f"{b}/32"), scope="link", type="broadcast", **mine)  # type: ignore[arg-type]
                  for b in sorted(brd)]
