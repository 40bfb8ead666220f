"""The kernel's own answers, per namespace: what ``trace`` asks and what ``inspect`` shows.

Netlink through netlab's one codec (netlab.kernel.netlink and rtnl), on one
socket per namespace opened inside it (netlab.kernel.netns; no helper
processes), every wait bounded:

- ``RTM_GETROUTE`` is ``ip route get DST from SRC iif DEV``: the kernel's
  routing decision for that very packet, and again with ``RTM_F_FIB_MATCH``
  (``ip route get ... fibmatch``) for the table entry it matched;
- the ``RTM_GETNEIGH`` dump holds the next hop's ARP entry; ``AF_BRIDGE``
  neighbour dumps are the FDB (``bridge fdb show``): VXLAN entries carry the
  remote VTEP in ``NDA_DST``, bridge entries name their port and
  ``NDA_MASTER``;
- link dumps: kind, master, VXLAN settings, and (``AF_BRIDGE``) each bridge
  port's STP state, hairpin and learning flags.

conntrack entries and the tables of iptables and nft are read in
netlab.trace.tables, whose :class:`KernelTables` this class extends.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from typing import Any

from netlab.kernel import netlink, netns as nsmod, procsys, rtnl, rtnl_bridge, rtnl_neigh, rtnl_parse, sockdiag
from netlab.plan.route_attrs import RTAX_MTU, metric_words
from netlab.trace.facts import FdbFacts, InetAddress, LinkFacts, NeighFacts, RouteFacts, RouteFailure, VxlanFacts
from netlab.trace.tables import KernelTables
# The tables' parsers live in trace/tables; tests import them from here too
from netlab.trace.tables import (nft_table_of as nft_table_of, parse_conntrack as parse_conntrack,
                                 parse_nat_table as parse_nat_table)

NUD = [(0x80, "PERMANENT"), (0x40, "NOARP"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
       (0x10, "PROBE"), (0x20, "FAILED"), (0x01, "INCOMPLETE")]
BR_STATES = rtnl.BR_STATES  # a bridge port's STP state by number, as `bridge link` names it


# include/uapi/linux/if_link.h: enum macvlan_mode (flags), enum ipvlan_mode
MACVLAN_MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}
IPVLAN_MODES = {0: "l2", 1: "l3", 2: "l3s"}


def nud_state(state: int) -> str:
    for bit, name in NUD:
        if state & bit:
            return name
    return "NONE"


def _fdb_state(state: int, flags: int = 0) -> str:
    """An FDB entry's state as trace says it, with ``sticky`` where the kernel has it (``bridge -j fdb``'s flags:
    ``static sticky`` never moves to the port its MAC is next seen on, a plain ``static`` one does); a sticky one
    that ages is a hand's (``dynamic sticky``: learning never sets sticky, kernel/rtnl_bridge.kept_state), not a
    learned one."""
    sticky = "".join(f" {w}" for w in rtnl_bridge.fdb_flag_words(flags))  # sticky, extern_learn (never aged)
    if state & rtnl.NUD_PERMANENT:
        return "permanent" + sticky
    if state & rtnl.NUD_NOARP:
        return "static" + sticky
    return f"dynamic{sticky}" if sticky else "learned"


def _expires(msg: netlink.Msg) -> int | None:
    """A cached route's seconds left (RTA_CACHEINFO's rta_expires, in USER_HZ ticks: ``cache expires 96sec``); the
    kernel puts a learned path MTU in the answer's metrics only while it has some. None: not a cached one."""
    info = netlink.attrs(msg.body, rtnl.RTMSG.size).get(rtnl.RTA_CACHEINFO)
    expires = struct.unpack_from("=i", info, 8)[0] if info and len(info) >= 12 else 0
    return expires // (os.sysconf("SC_CLK_TCK") or 100) if expires > 0 else None  # as ip prints it


@dataclass(frozen=True)
class BridgePort:
    """A bridge port as ``bridge -d link`` shows it."""

    index: int
    name: str
    master: int | None
    state: int | None  # BR_STATES
    hairpin: bool
    learning: bool
    settings: tuple[str, ...] = ()  # away from the kernel's defaults (kernel/rtnl_bridge.py)


def parse_bridge_port(m: netlink.Msg) -> BridgePort | None:
    """An entry of the AF_BRIDGE link dump; None when it carries no port attributes."""
    link = rtnl_parse.parse_link(m)
    info = netlink.attrs(m.body, rtnl.IFINFO.size).get(rtnl.IFLA_PROTINFO)
    if info is None:
        return None
    a = netlink.attrs(info)
    return BridgePort(index=link.index, name=link.name, master=link.master,
                      state=netlink.get_u8(a, rtnl.IFLA_BRPORT_STATE),
                      hairpin=bool(netlink.get_u8(a, rtnl.IFLA_BRPORT_MODE)),
                      learning=bool(netlink.get_u8(a, rtnl.IFLA_BRPORT_LEARNING)), settings=rtnl_bridge.port_words(a))


class LiveKernel(KernelTables):
    """:class:`netlab.trace.facts.Kernel` answered by the running kernel (links, FDB, conntrack cached); its
    netfilter tables and conntrack entries are read by :class:`netlab.trace.tables.KernelTables`."""

    def __init__(self, timeout: float = netlink.DEFAULT_TIMEOUT):
        super().__init__()
        self.timeout = timeout
        self._conns: dict[str, netlink.Conn] = {}
        self._links: dict[str, dict[str, LinkFacts]] = {}
        self._byindex: dict[str, dict[int, str]] = {}
        self._fdb: dict[str, list[FdbFacts]] = {}
        self._neigh_before: dict[str, list[rtnl_parse.NeighMsg]] = {}
        self._fdb_before: dict[str, list[rtnl_parse.NeighMsg]] = {}
        self._brnf: dict[str, bool] = {}
        # namespace -> the NetworkPolicy chains whose REJECT counted the packet (run.py: counters before and after)
        self.policy_rejects: dict[str, list[str]] = {}
        # whether the trace's socket refused its packet as bigger than the path MTU (EMSGSIZE: run.py); None: not
        # known. A path MTU learned from the packet's own fragmentation needed did not keep it from leaving.
        self.sent_too_big: bool | None = None

    def conn(self, netns: str) -> netlink.Conn:
        c = self._conns.get(netns)
        if c is None:
            with nsmod.entered(netns):  # the socket keeps the namespace it was opened in
                c = self._conns[netns] = netlink.Conn(timeout=self.timeout)
        return c

    def close(self) -> None:
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    def __enter__(self) -> "LiveKernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- links

    def links(self, netns: str) -> dict[str, LinkFacts]:
        if netns not in self._links:
            self._load_links(netns)
        return self._links[netns]

    def ifname(self, netns: str, index: int) -> str | None:
        self.links(netns)
        return self._byindex[netns].get(index)

    def _load_links(self, netns: str) -> None:
        c = self.conn(netns)
        raw = rtnl_parse.dump_links(c, netns)
        names = {link.index: link.name for link in raw}
        inet: dict[int, list[InetAddress]] = {}  # in the kernel's order, as `ip -4 addr` lists them
        for a in map(rtnl_parse.parse_addr, c.dump(f"addresses in {netns}", rtnl.addr_dump())):
            inet.setdefault(a.index, []).append(InetAddress(f"{a.address}/{a.prefixlen}", a.scope,
                                                            bool(a.flags & rtnl.IFA_F_SECONDARY)))
        ports = {p.index: p for p in self.bridge_port_list(netns)}
        out: dict[str, LinkFacts] = {}
        for link in raw:
            vx = None
            if link.kind == "vxlan":
                d = link.data
                vx = VxlanFacts(vni=d.get("id", 0), port=d.get("port", 0), local=d.get("local"),
                                dev=names.get(d.get("link") or 0), learning=bool(d.get("learning")))
            lower = link.peer if link.kind in ("macvlan", "ipvlan") else None
            mode = (MACVLAN_MODES if link.kind == "macvlan" else IPVLAN_MODES).get(link.data.get("mode", -1)) \
                if lower is not None else None
            port = ports.get(link.index)
            state = BR_STATES.get(port.state) if port is not None and port.state is not None else None
            out[link.name] = LinkFacts(
                name=link.name, index=link.index, kind=link.kind, mac=link.mac, mtu=link.mtu or 0, up=link.up,
                master=names.get(link.master) if link.master else None, hairpin=port.hairpin if port else None,
                vxlan=vx, addresses=tuple(a.cidr for a in inet.get(link.index, ())),
                inet=tuple(inet.get(link.index, ())), operstate=link.operstate, port_state=state,
                port_settings=port.settings if port else (),
                lower=lower, lower_elsewhere=lower is not None and link.peer_netnsid is not None, mode=mode)
        self._links[netns] = out
        self._byindex[netns] = names

    def bridge_port_list(self, netns: str) -> list[BridgePort]:
        """``bridge -d link``: every bridge port with its STP state, hairpin and learning flags."""
        try:
            msgs = self.conn(netns).dump(f"bridge ports in {netns}", rtnl.link_dump(rtnl.AF_BRIDGE))
        except netlink.NetlinkError:
            return []
        return [p for p in map(parse_bridge_port, msgs) if p is not None]

    # -- routes

    def route_get(self, netns: str, dst: str, src: str | None = None, iif: str | None = None,
                  l4: tuple[int, int, int] | None = None) -> RouteFacts:
        index = None
        if iif:
            link = self.links(netns).get(iif)
            if link is None:
                raise RouteFailure(errno.ENODEV, f"no device {iif}")
            index = link.index
        c = self.conn(netns)
        what = f"route get {dst} in {netns}"
        try:
            msg = c.get(what, rtnl.route_get(dst, src, index, l4=l4))
            ans = rtnl_parse.parse_route(msg)
        except netlink.NetlinkTimeout:
            raise
        except netlink.NetlinkError as exc:  # the kernel's answer: no route, invalid source ...
            raise RouteFailure(exc.errno, os.strerror(exc.errno)) from None
        matched, hops = None, ()
        try:
            fib = rtnl_parse.parse_route(c.get(what, rtnl.route_get(dst, src, index, True, l4=l4)))
            matched = self._route_text(netns, fib)
            hops = tuple(gw or "" for gw, _ in fib.nexthops)
        except netlink.NetlinkError:
            pass
        mtu = dict(ans.metrics).get(RTAX_MTU)
        return RouteFacts(type=rtnl.ROUTE_TYPE_NAMES.get(ans.type, str(ans.type)),
                          oif=self.ifname(netns, ans.oif) if ans.oif else None, gateway=ans.gateway,
                          prefsrc=ans.prefsrc, matched=matched, hops=hops, mtu=mtu if isinstance(mtu, int) else None,
                          mtu_expires=_expires(msg) if mtu else None)

    def _route_text(self, netns: str, r: rtnl_parse.RouteMsg) -> str:
        """A route as ``ip route`` prints it."""
        rtype = rtnl.ROUTE_TYPE_NAMES.get(r.type, str(r.type))
        text = "default" if r.dst_len == 0 else f"{r.dst}/{r.dst_len}" if r.dst_len != 32 else r.dst
        if rtype != "unicast":
            text = f"{rtype} {text}"
        if r.gateway:
            text += f" via {r.gateway}"
        if r.oif:
            text += f" dev {self.ifname(netns, r.oif)}"
        proto = rtnl.PROTO_NAMES.get(r.proto)
        if proto and proto not in ("unspec", "boot"):
            text += f" proto {proto}"
        scope = rtnl.SCOPE_NAMES.get(r.scope, str(r.scope))
        if scope != "global" and rtype == "unicast":
            text += f" scope {scope}"
        if r.prefsrc:
            text += f" src {r.prefsrc}"
        if r.priority:
            text += f" metric {r.priority}"
        if r.flags & rtnl.RTNH_F_ONLINK:
            text += " onlink"
        text += "".join(f" {w}" for w in metric_words(r.metrics))
        for gw, oif in r.nexthops:  # a multipath route's hops (last), as `ip -o route` prints them
            text += (f" nexthop via {gw}" if gw else " nexthop") + f" dev {self.ifname(netns, oif)}"
        return text

    def routes(self, netns: str) -> list[dict[str, Any]]:
        """``ip route``: the main table."""
        out = []
        for r in rtnl_parse.parse_routes(self.conn(netns).dump(f"routes in {netns}", rtnl.route_dump())):
            if r.table != rtnl.RT_TABLE_MAIN:
                continue
            origin = rtnl.PROTO_NAMES.get(r.proto, str(r.proto))
            # the route's origin is `protocol`, as `ip -j route` says it; `proto` beside it for one release
            # (docs/json.md)
            out.append({"dst": f"{r.dst}/{r.dst_len}" if r.dst_len else "default", "gateway": r.gateway,
                        "dev": self.ifname(netns, r.oif) if r.oif else None, "prefsrc": r.prefsrc,
                        "protocol": origin, "proto": origin, "scope": rtnl.SCOPE_NAMES.get(r.scope),
                        "type": rtnl.ROUTE_TYPE_NAMES.get(r.type), "onlink": bool(r.flags & rtnl.RTNH_F_ONLINK),
                        "metric": r.priority or 0, "metrics": metric_words(r.metrics),
                        "text": self._route_text(netns, r)})
        return out

    # -- neighbours and FDB

    def _neigh_dump(self, netns: str) -> list[rtnl_parse.NeighMsg]:
        return [rtnl_parse.parse_neigh(m) for m in self.conn(netns).dump(f"neighbours in {netns}", rtnl.neigh_dump())]

    def neigh(self, netns: str, dev: str, ip: str) -> NeighFacts | None:
        """``ip neigh show IP dev DEV``: the entry as it is now (never cached)."""
        link = self.links(netns).get(dev)
        if link is None:
            return None
        n = next((n for n in self._neigh_dump(netns) if n.index == link.index and n.dst == ip), None)
        if n is None:
            return None
        return NeighFacts(ip=ip, dev=dev, lladdr=n.lladdr, state=nud_state(n.state),
                          flags=rtnl_neigh.flag_words(n.flags))

    def neighbours_before(self, netns: str, entries: list[rtnl_parse.NeighMsg]) -> None:
        """Keep ``netns``'s neighbour entries as they were before the packet (:meth:`neigh_state_before`)."""
        self._neigh_before[netns] = entries

    def neigh_state_before(self, netns: str, dev: str, ip: str) -> str | None:
        """The state of the entry for ``ip`` on ``dev`` before the packet, "no entry" when there was none; None:
        not read."""
        if netns not in self._neigh_before or self.links(netns).get(dev) is None:
            return None
        n = self._entry_before(netns, dev, ip)
        return nud_state(n.state) if n is not None else "no entry"

    def neigh_before(self, netns: str, dev: str, ip: str) -> NeighFacts | None:
        """The entry for ``ip`` on ``dev`` as it was before the packet; None: none then, or not read."""
        n = self._entry_before(netns, dev, ip)
        return NeighFacts(ip=ip, dev=dev, lladdr=n.lladdr, state=nud_state(n.state)) if n is not None else None

    def _entry_before(self, netns: str, dev: str, ip: str) -> rtnl_parse.NeighMsg | None:
        """The kept entry for ``ip`` on ``dev`` (:meth:`neighbours_before`); None: none then, or not read."""
        link = self.links(netns).get(dev)
        if link is None:
            return None
        return next((n for n in self._neigh_before.get(netns, []) if n.index == link.index and n.dst == ip), None)

    def neigh_header_before(self, netns: str, dev: str, ip: str) -> bool | None:
        """Whether the entry for ``ip`` on ``dev`` held a cached Ethernet header before the packet, as far as can be
        known (the kernel does not show it; the first packet sent through an entry builds it, neigh_hh_init):
        True when a packet was sent through it since it was last written (its ``used`` age below its
        ``updated`` one), or it was resolved by ARP then (the packet that waited for the answer went through it);
        False when nothing was since it was made by hand (no ARP request, ``used`` set as it was made: a fresh
        static entry); None when not known (used before a later rewrite, which keeps a cached header; no entry)."""
        n = self._entry_before(netns, dev, ip)
        if n is None or n.used is None or n.updated is None:
            return None
        if n.used < n.updated:
            return True
        if n.used - n.updated > 1:
            return None
        return bool(n.probes)

    def neighbours(self, netns: str) -> list[dict[str, Any]]:
        out = []
        for n in self._neigh_dump(netns):
            state = nud_state(n.state)
            if state == "NOARP":  # multicast/broadcast/loopback entries `ip neigh` hides too
                continue
            out.append({"dst": n.dst, "dev": self.ifname(netns, n.index), "lladdr": n.lladdr, "state": state,
                        **({"flags": list(rtnl_neigh.flag_words(n.flags))} if n.flags & rtnl_neigh.NTF_EXT_LEARNED
                           else {})})
        return out

    def _fdb_dump(self, netns: str) -> list[rtnl_parse.NeighMsg]:
        """``bridge fdb show``: the bridges' and VXLAN devices' forwarding entries (those with a MAC)."""
        dump = self.conn(netns).dump(f"fdb in {netns}", rtnl.neigh_dump(rtnl.AF_BRIDGE))
        return [n for n in map(rtnl_parse.parse_neigh, dump) if n.lladdr]

    def fdb_before_packet(self, netns: str) -> None:
        """Keep ``netns``'s FDB as it is before the packet (:meth:`fdb_state_before`): the packet's answer (its
        reply, crossing a bridge) teaches a bridge the MAC it had to flood the packet to."""
        self._fdb_before[netns] = self._fdb_dump(netns)

    def fdb_state_before(self, netns: str, bridge: str, mac: str) -> str | None:
        """The state of ``bridge``'s entry for ``mac`` before the packet ("learned", "permanent" ...), "no entry"
        when it had none; None: not read."""
        link = self.links(netns).get(bridge)
        if netns not in self._fdb_before or link is None:
            return None
        n = next((n for n in self._fdb_before[netns]
                  if n.master == link.index and (n.lladdr or "").lower() == mac.lower()), None)
        return _fdb_state(n.state, n.flags) if n is not None else "no entry"

    def fdb(self, netns: str) -> list[FdbFacts]:
        if netns not in self._fdb:
            out = []
            for n in self._fdb_dump(netns):
                out.append(FdbFacts(lladdr=n.lladdr or "", dev=self.ifname(netns, n.index) or str(n.index),
                                    master=self.ifname(netns, n.master) if n.master else None, dst=n.dst,
                                    state=_fdb_state(n.state, n.flags), self_=bool(n.flags & rtnl.NTF_SELF),
                                    port=n.port, vni=n.vni, via=self.ifname(netns, n.ifindex) or str(n.ifindex)
                                    if n.ifindex else None))
            self._fdb[netns] = out
        return self._fdb[netns]

    def bridge_ports(self, netns: str) -> list[dict[str, Any]]:
        return [{"bridge": self.ifname(netns, p.master), "port": p.name,
                 "state": BR_STATES.get(p.state if p.state is not None else -1, "?"), "hairpin": p.hairpin,
                 "learning": p.learning}
                for p in self.bridge_port_list(netns) if p.master]

    def bridge_nf(self, netns: str) -> bool:
        if netns not in self._brnf:
            with nsmod.entered(netns):
                self._brnf[netns] = procsys.read_sysctl_here("net.bridge.bridge-nf-call-iptables") == "1"
        return self._brnf[netns]

    def sysctl(self, netns: str, key: str) -> str | None:
        """A sysctl of the namespace (None: it does not exist there)."""
        with nsmod.entered(netns):
            return procsys.read_sysctl_here(key)

    def sockets(self, netns: str, proto: str) -> list[sockdiag.Bound] | None:
        """The ``proto`` sockets bound in the namespace (TCP's listening ones), as ``ss -ltun`` lists them; None
        when this kernel cannot list them (sockdiag.bound)."""
        return sockdiag.bound_in(netns, proto, self.timeout)
