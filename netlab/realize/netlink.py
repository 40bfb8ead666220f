"""Kernel objects, one function per object and verb, in a lab's namespaces.

Creating uses the same encoded requests as the fresh-namespace batches
(nlmsg.py): a fresh namespace gets them all at once (:class:`FreshBatches`),
a repair of a running lab one at a time with indexes looked up by name.
Reading and deleting go through pyroute2 (:class:`Sockets`: one IPRoute per
namespace, opened in-process). Errors are NetlinkError; apply.py maps them
to messages.
"""

from __future__ import annotations

import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab.realize import netns as nsmod
from netlab.realize import nlmsg
from netlab.realize.nlbatch import Batch, BatchError, send_here
from netlab.realize.nlmsg import NUD_PERMANENT, RTNH_F_ONLINK  # noqa: F401 - re-exported for observe.py
from netlab.plan.resources import Address, Bridge, Fdb, Neigh, Route, Veth, Vxlan

RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2
# Every veth netlab makes is in this link group, so `down` deletes all of a
# namespace's veths with one RTM_DELLINK (one batched unregister in the
# kernel, ~50 ms for hundreds) instead of one synchronize_net() per pair.
LINK_GROUP = 1


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
        """ifindex of a link by name (cached; a miss asks the kernel for that one link)."""
        cache = self._index.setdefault(netns, {})
        if ifname not in cache:
            try:
                (link,) = self(netns).link("get", ifname=ifname)
            except NetlinkError as exc:
                if exc.code == 19:
                    raise LookupError(f"{ifname} does not exist in {netns}") from None
                raise
            cache[ifname] = link["index"]
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


def _send(netns: str, what: str, build, *args) -> None:
    """One request, encoded like the fresh-namespace batches (nlmsg.py), sent in ``netns``."""
    batch = Batch()
    batch.add(what, build, *args)
    try:
        with nsmod.entered(netns):
            send_here(batch)
    except BatchError as exc:
        raise NetlinkError(exc.code, str(exc)) from None


def add_bridge(s: Sockets, br: Bridge) -> None:
    _send(br.netns, br.describe(), nlmsg.bridge_add, 0, br.name, br.mac, br.mtu)


def add_veth(s: Sockets, v: Veth) -> None:
    """Create the pair with the peer born in its namespace; never in the host's.

    Index 0 for both ends: in a namespace that already has links, the kernel picks.
    """
    master = s.index(v.netns, v.master) if v.master else None
    fd = os.open(nsmod.netns_path(v.peer_netns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _send(v.netns, v.describe(), nlmsg.veth_add, 0, v.name, v.mac, v.mtu, LINK_GROUP, master, 0,
              v.peer_name, v.peer_mac, fd)
    finally:
        os.close(fd)
    s.forget(v.netns, v.name)
    s.forget(v.peer_netns, v.peer_name)
    if v.hairpin:
        _send(v.netns, f"hairpin on {v.name} in {v.netns}", nlmsg.hairpin_on, s.index(v.netns, v.name))
    # The peer end is created down; it comes up from its own namespace.
    _send(v.peer_netns, f"link {v.peer_name} up in {v.peer_netns}", nlmsg.link_up,
          s.index(v.peer_netns, v.peer_name))


def add_vxlan(s: Sockets, vx: Vxlan) -> None:
    _send(vx.netns, vx.describe(), nlmsg.vxlan_add, 0, vx.name, vx.mac, vx.mtu, vx.vni, str(vx.local), vx.port,
          s.index(vx.netns, vx.dev))


def del_link_group(s: Sockets, netns: str) -> None:
    """``ip link del group 1``: every veth the lab made in this namespace, at once."""
    try:
        s(netns).link("del", group=LINK_GROUP)
    except NetlinkError as exc:
        if exc.code not in (19, 22):  # nothing in the group
            raise
    s.forget(netns)


def del_link(s: Sockets, netns: str, ifname: str) -> None:
    s(netns).link("del", index=s.index(netns, ifname))
    s.forget(netns, ifname)


def add_address(s: Sockets, a: Address) -> None:
    _send(a.netns, a.describe(), nlmsg.addr_add, s.index(a.netns, a.dev), str(a.address.ip),
          a.address.network.prefixlen)


def del_address(s: Sockets, a: Address) -> None:
    s(a.netns).addr("del", index=s.index(a.netns, a.dev), address=str(a.address.ip),
                    prefixlen=a.address.network.prefixlen)


def replace_route(s: Sockets, r: Route) -> None:
    _send(r.netns, r.describe(), nlmsg.route_replace, str(r.dst.network_address), r.dst.prefixlen,
          s.index(r.netns, r.dev), str(r.gateway) if r.gateway else None, r.onlink)


def del_route(s: Sockets, r: Route) -> None:
    s(r.netns).route("del", dst=str(r.dst), table=RT_TABLE_MAIN)


def replace_neigh(s: Sockets, n: Neigh) -> None:
    _send(n.netns, n.describe(), nlmsg.neigh_replace, s.index(n.netns, n.dev), str(n.dst), n.lladdr)


def del_neigh(s: Sockets, n: Neigh) -> None:
    s(n.netns).neigh("del", dst=str(n.dst), ifindex=s.index(n.netns, n.dev))


def append_fdb(s: Sockets, f: Fdb) -> None:
    """``bridge fdb append MAC dev flannel.1 dst NODE self permanent``."""
    _send(f.netns, f.describe(), nlmsg.fdb_append, s.index(f.netns, f.dev), f.lladdr, str(f.dst))


def del_fdb(s: Sockets, f: Fdb) -> None:
    s(f.netns).fdb("del", ifindex=s.index(f.netns, f.dev), lladdr=f.lladdr, dst=str(f.dst))


# --- fresh namespaces, batched ------------------------------------------------


class FreshBatches:
    """Encode every object of fresh namespaces into one batch per namespace.

    Interface indexes are assigned here (lo is 1, then in creation order, a
    veth's peer counting in its own namespace), so requests refer to links
    that do not exist yet. Namespaces are sent in plan order: the underlay
    (whose veths create the nodes' eth0), nodes (creating pods' eth0), pods.
    """

    def __init__(self, order: list[str]):
        self.order = order
        self.batches = {ns: Batch() for ns in order}
        self.index: dict[str, dict[str, int]] = {ns: {"lo": 1} for ns in order}

    def _alloc(self, netns: str, ifname: str) -> int:
        table = self.index[netns]
        table[ifname] = len(table) + 1
        return table[ifname]

    def crosses(self, r) -> bool:
        """A veth from a fresh namespace into an old one cannot be batched."""
        return isinstance(r, Veth) and (r.netns not in self.batches or r.peer_netns not in self.batches)

    def add(self, r) -> None:
        b = self.batches[r.netns]
        idx = self.index[r.netns]
        what = r.describe()
        if isinstance(r, Bridge):
            b.add(what, nlmsg.bridge_add, self._alloc(r.netns, r.name), r.name, r.mac, r.mtu)
        elif isinstance(r, Veth):
            mine = self._alloc(r.netns, r.name)
            theirs = self._alloc(r.peer_netns, r.peer_name)
            b.add(what, nlmsg.veth_add, mine, r.name, r.mac, r.mtu, LINK_GROUP,
                  idx[r.master] if r.master else None, theirs, r.peer_name, r.peer_mac,
                  b.netns_fd(nsmod.netns_path(r.peer_netns)))
            if r.hairpin:
                b.add(f"hairpin on {r.name} in {r.netns}", nlmsg.hairpin_on, mine)
            self.batches[r.peer_netns].add(f"link {r.peer_name} up in {r.peer_netns}", nlmsg.link_up, theirs)
        elif isinstance(r, Vxlan):
            b.add(what, nlmsg.vxlan_add, self._alloc(r.netns, r.name), r.name, r.mac, r.mtu, r.vni,
                  str(r.local), r.port, idx[r.dev])
        elif isinstance(r, Address):
            b.add(what, nlmsg.addr_add, idx[r.dev], str(r.address.ip), r.address.network.prefixlen)
        elif isinstance(r, Route):
            b.add(what, nlmsg.route_replace, str(r.dst.network_address), r.dst.prefixlen, idx[r.dev],
                  str(r.gateway) if r.gateway else None, r.onlink)
        elif isinstance(r, Neigh):
            b.add(what, nlmsg.neigh_replace, idx[r.dev], str(r.dst), r.lladdr)
        elif isinstance(r, Fdb):
            b.add(what, nlmsg.fdb_append, idx[r.dev], r.lladdr, str(r.dst))
        else:
            raise TypeError(f"cannot batch {r.kind}")

    def send(self) -> None:
        """Send every namespace's batch, in order; the first failure raises NetlinkError."""
        for ns in self.order:
            batch = self.batches[ns]
            if not len(batch):
                continue
            try:
                with nsmod.entered(ns):
                    send_here(batch)
            except BatchError as exc:
                err = NetlinkError(exc.code, str(exc))
                err.netlab_what = str(exc)
                raise err from None
