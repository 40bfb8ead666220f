"""pyroute2 calls, one function per kernel object and verb.

Every function takes an IPRoute already bound to the right namespace (see
netns.py) and plan resources; interface indexes are looked up through a small
per-namespace cache. Errors stay pyroute2's NetlinkError here; apply.py maps
them to messages.
"""

from __future__ import annotations

from pyroute2 import IPRoute

from netlab.realize import netns as nsmod
from netlab.plan.resources import Address, Bridge, Fdb, Neigh, Route, Veth, Vxlan

NUD_PERMANENT = 0x80
RTNH_F_ONLINK = 0x4
RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2
BRPORT_MODE_HAIRPIN = 1


class Sockets:
    """One IPRoute per namespace, opened in-process and closed together."""

    def __init__(self) -> None:
        self._ipr: dict[str, IPRoute] = {}
        self._index: dict[str, dict[str, int]] = {}

    def __call__(self, netns: str) -> IPRoute:
        ipr = self._ipr.get(netns)
        if ipr is None:
            ipr = self._ipr[netns] = nsmod.open_iproute(netns)
        return ipr

    def index(self, netns: str, ifname: str) -> int:
        """ifindex of a link by name (cached; a miss re-reads the namespace's links)."""
        cache = self._index.setdefault(netns, {})
        if ifname not in cache:
            cache.clear()
            for link in self(netns).get_links():
                cache[link.get("IFLA_IFNAME")] = link["index"]
        if ifname not in cache:
            raise LookupError(f"{ifname} does not exist in {netns}")
        return cache[ifname]

    def forget(self, netns: str, ifname: str | None = None) -> None:
        if ifname is None:
            self._index.pop(netns, None)
        else:
            self._index.get(netns, {}).pop(ifname, None)

    def drop(self, netns: str) -> None:
        ipr = self._ipr.pop(netns, None)
        self._index.pop(netns, None)
        if ipr is not None:
            ipr.close()

    def close(self) -> None:
        for netns in list(self._ipr):
            self.drop(netns)


def add_bridge(s: Sockets, br: Bridge) -> None:
    s(br.netns).link("add", ifname=br.name, kind="bridge", address=br.mac, mtu=br.mtu, state="up")


def add_veth(s: Sockets, v: Veth) -> None:
    """Create the pair with the peer born in its namespace; never in the host's."""
    extra = {"master": s.index(v.netns, v.master)} if v.master else {}
    s(v.netns).link("add", ifname=v.name, kind="veth", address=v.mac, mtu=v.mtu, state="up",
                    peer={"ifname": v.peer_name, "net_ns_fd": nsmod.netns_path(v.peer_netns),
                          "address": v.peer_mac, "mtu": v.mtu}, **extra)
    s.forget(v.peer_netns)
    if v.hairpin:
        s(v.netns).brport("set", index=s.index(v.netns, v.name), mode=BRPORT_MODE_HAIRPIN)
    # The peer end is created down; it comes up from its own namespace.
    s(v.peer_netns).link("set", index=s.index(v.peer_netns, v.peer_name), state="up")


def add_vxlan(s: Sockets, vx: Vxlan) -> None:
    s(vx.netns).link("add", ifname=vx.name, kind="vxlan", vxlan_id=vx.vni, vxlan_local=str(vx.local),
                     vxlan_port=vx.port, vxlan_link=s.index(vx.netns, vx.dev), vxlan_learning=0,
                     address=vx.mac, mtu=vx.mtu, state="up")


def del_link(s: Sockets, netns: str, ifname: str) -> None:
    s(netns).link("del", index=s.index(netns, ifname))
    s.forget(netns)


def add_address(s: Sockets, a: Address) -> None:
    s(a.netns).addr("add", index=s.index(a.netns, a.dev), address=str(a.address.ip),
                    prefixlen=a.address.network.prefixlen)


def del_address(s: Sockets, a: Address) -> None:
    s(a.netns).addr("del", index=s.index(a.netns, a.dev), address=str(a.address.ip),
                    prefixlen=a.address.network.prefixlen)


def replace_route(s: Sockets, r: Route) -> None:
    kwargs = {"dst": str(r.dst), "oif": s.index(r.netns, r.dev), "table": RT_TABLE_MAIN}
    if r.gateway is not None:
        kwargs["gateway"] = str(r.gateway)
    if r.onlink:
        kwargs["flags"] = RTNH_F_ONLINK
    s(r.netns).route("replace", **kwargs)


def del_route(s: Sockets, r: Route) -> None:
    s(r.netns).route("del", dst=str(r.dst), table=RT_TABLE_MAIN)


def replace_neigh(s: Sockets, n: Neigh) -> None:
    s(n.netns).neigh("replace", dst=str(n.dst), lladdr=n.lladdr, ifindex=s.index(n.netns, n.dev),
                     state=NUD_PERMANENT)


def del_neigh(s: Sockets, n: Neigh) -> None:
    s(n.netns).neigh("del", dst=str(n.dst), ifindex=s.index(n.netns, n.dev))


def append_fdb(s: Sockets, f: Fdb) -> None:
    """``bridge fdb append MAC dev flannel.1 dst NODE self permanent``."""
    s(f.netns).fdb("append", ifindex=s.index(f.netns, f.dev), lladdr=f.lladdr, dst=str(f.dst))


def del_fdb(s: Sockets, f: Fdb) -> None:
    s(f.netns).fdb("del", ifindex=s.index(f.netns, f.dev), lladdr=f.lladdr, dst=str(f.dst))
