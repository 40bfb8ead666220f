"""The live kernel in the plan's own words: snapshots turned into resources.

A :class:`~netlab.kernel.base.Snapshot` holds what the dumps said (indexes,
numbers); this turns it into the same frozen dataclasses the plan is made of,
so comparing the two is comparing equal objects (diff.py). The routes the
kernel makes for addresses (proto kernel: the main table's connected ones, the
local table's local and broadcast ones) are kept apart, which diff.py holds
against the addresses. Left out are learned neighbours (but those the plan
holds PERMANENT: there in another state, they differ), a bridge's learned FDB
entries and its ports' own MACs, a VXLAN device's (the all-zeros entry its
default remote gives it: the device's setting), IPv6.

A veth is only the lab's veth when both ends say so: this end's peer index is
the other end's index in the namespace the plan names, and the other way
round. Anything else is reported with an empty peer, so it differs from the
plan and is made again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address as _Address, IPv4Interface as _Interface, IPv4Network as _Network

from netlab.kernel import rtnl, rtnl_bridge, rtnl_neigh, rtnl_parse, rtnl_vxlan
from netlab.kernel.base import Snapshot
from netlab.plan.resources import (Address, Bridge, Fdb, Link, Loopback, Neigh, PortFdb, ProxyNeigh, Resource, Route,
                                   Rule, Veth, VethPeer, Vxlan)


# The addresses a lab's namespaces repeat (lo's 127.0.0.1/8, the default route's 0.0.0.0/0, a node's gateway and
# broadcast in each of its pods) are parsed once: their objects are immutable, so one serves every namespace.
IPv4Address = lru_cache(maxsize=4096)(_Address)
IPv4Interface = lru_cache(maxsize=4096)(_Interface)
IPv4Network = lru_cache(maxsize=4096)(_Network)


@dataclass
class Observed:
    """One namespace as resources, by identity key."""

    netns: str
    objects: dict[tuple, Resource] = field(default_factory=dict)
    sysctls: dict[str, str | None] = field(default_factory=dict)
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # backend -> table -> iptables-save text
    nft_tables: list[tuple[str, str]] = field(default_factory=list)
    nft: dict[tuple[str, str], dict] = field(default_factory=dict)  # kube-proxy's table, as nft -j printed it
    base_chains: list[tuple[str, str]] = field(default_factory=list)  # iptables-nft's hooked: (table, chain)
    unshown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tables iptables cannot show (kernel/unshown)
    running: set[str] = field(default_factory=set)  # links operationally up (IFF_RUNNING: up, with carrier)
    # The kernel's connected routes (proto kernel, main table), by key and device (one prefix's on two devices are
    # two routes: the lab's, and one of an address someone added elsewhere): diff.py holds them against the addresses
    connected: dict[tuple, Route] = field(default_factory=dict)
    # The kernel's routes of the local table (proto kernel: each address's local one, and its broadcast ones while
    # its link is up), by key and device, held against the addresses as the connected ones are (diff.diff_local)
    local: dict[tuple, Route] = field(default_factory=dict)
    no_route: set[tuple] = field(default_factory=set)  # addresses the kernel makes no connected route for, by key
    secondary: set[tuple] = field(default_factory=set)  # addresses another one of their subnet is before, by key

    def add(self, r: Resource) -> None:
        self.objects.setdefault(r.key, r)


def observe(snap: Snapshot, planned: dict[tuple, Resource], peers: dict[str, Snapshot]) -> Observed:
    """Resources of one namespace; ``planned`` (key -> resource) says which veths to pair with which peers."""
    ns = snap.netns
    out = Observed(netns=ns, sysctls=dict(snap.sysctls), tables=snap.tables, nft_tables=list(snap.nft_tables),
                   nft=dict(snap.nft), base_chains=list(snap.base_chains), unshown=dict(snap.unshown),
                   running={link.name for link in snap.links.values() if link.up and link.running})
    names = {link.index: link.name for link in snap.links.values()}
    for link in snap.links.values():
        out.add(_link(ns, link, snap, names, planned.get(("link", ns, link.name)), peers))
    for a in snap.addrs:
        if a.index in names:
            addr = Address(netns=ns, dev=names[a.index], address=IPv4Interface(f"{a.address}/{a.prefixlen}"),
                           broadcast=IPv4Address(a.broadcast) if a.broadcast else None,
                           scope=rtnl.SCOPE_NAMES.get(a.scope, str(a.scope)), metric=a.metric,
                           noprefixroute=bool(a.flags & rtnl.IFA_F_NOPREFIXROUTE), valid_lft=a.valid_lft,
                           preferred_lft=a.preferred_lft)
            out.add(addr)
            if a.flags & (rtnl.IFA_F_SECONDARY | rtnl.IFA_F_NOPREFIXROUTE):  # the kernel makes it no route
                out.no_route.add(addr.key)
            if a.flags & rtnl.IFA_F_SECONDARY:
                out.secondary.add(addr.key)
    for r in snap.routes:
        if r.proto == rtnl.RTPROT_KERNEL and r.table not in (rtnl.RT_TABLE_MAIN, rtnl.RT_TABLE_LOCAL):
            continue  # the kernel makes none there for an address
        # A multipath route's hops all through one device are the plan's nexthops through its dev; through several,
        # it has no dev of its own (and differs from any plan)
        hop_devs = {names.get(oif) for _, oif in r.nexthops}
        oif_name = names.get(r.oif) if r.oif else (hop_devs.pop() if len(hop_devs) == 1 else None)
        quirks = _hop_quirks(r, names, oif_name)
        route = Route(netns=ns, dst=IPv4Network(f"{r.dst}/{r.dst_len}"),
                      gateway=IPv4Address(r.gateway) if r.gateway else None,
                      nexthops=tuple(IPv4Address(gw) if gw else IPv4Address("0.0.0.0") for gw, _ in r.nexthops),
                      dev=oif_name, onlink=bool(r.flags & rtnl.RTNH_F_ONLINK),
                      table=r.table, proto=rtnl.PROTO_NAMES.get(r.proto, str(r.proto)),
                      scope=rtnl.SCOPE_NAMES.get(r.scope, str(r.scope)),
                      type=rtnl.ROUTE_TYPE_NAMES.get(r.type, str(r.type)), metric=r.priority or 0,
                      hop_quirks=quirks, src=IPv4Address(r.prefsrc) if r.prefsrc else None, metrics=r.metrics,
                      tos=r.tos)
        if r.proto == rtnl.RTPROT_KERNEL:  # a connected or local route: the lab's where it is one of its addresses'
            (out.connected if r.table == rtnl.RT_TABLE_MAIN else out.local).setdefault((route.key, route.dev), route)
        else:
            out.add(route)
    for n in snap.neighs:
        dev = names.get(n.index)
        # PERMANENT or extern_learn: made by someone, kept (the kernel never ages either); one of the plan's in
        # another state or with a flag differs (the learned ones go by)
        kept = n.state & rtnl.NUD_PERMANENT or n.flags & rtnl_neigh.NTF_EXT_LEARNED
        if n.dst and dev and (kept or ("neigh", ns, dev, n.dst) in planned):
            out.add(Neigh(netns=ns, dev=dev, dst=IPv4Address(n.dst), lladdr=n.lladdr or "",
                          state=rtnl_vxlan.neigh_state(n.state), flags=rtnl_neigh.flag_words(n.flags)))
    # none is planned: each on a device is extra. One on no device is left out: the full suite met such entries
    # (10.9.0.51) in namespaces of labs that never made one, of an origin not found (closing62, Left)
    for n in snap.proxies:
        if n.dst and n.index and n.index in names:
            out.add(ProxyNeigh(netns=ns, dst=IPv4Address(n.dst), dev=names.get(n.index)))
    vxlans = {link.index: link for link in snap.links.values() if link.kind == "vxlan"}
    for f in snap.fdb:
        if f.index in vxlans and f.dst and f.lladdr and not _devices_own(f, vxlans[f.index]):
            out.add(Fdb(netns=ns, dev=names[f.index], lladdr=f.lladdr, dst=IPv4Address(f.dst), port=f.port,
                        vni=f.vni, via=names.get(f.ifindex, str(f.ifindex)) if f.ifindex else None,
                        state=rtnl_vxlan.fdb_state(f.state), flags=rtnl_neigh.flag_words(f.flags)))
    for e in _hand_fdb(snap, names):
        out.add(e)
    for r in snap.rules:
        out.add(Rule(netns=ns, priority=r.priority, table=r.table,
                     action=rtnl.RULE_ACTION_NAMES.get(r.action, str(r.action)),
                     src=IPv4Network(f"{r.src}/{r.src_len}") if r.src_len else None,
                     dst=IPv4Network(f"{r.dst}/{r.dst_len}") if r.dst_len else None,
                     iif=r.iif, oif=r.oif, fwmark=r.fwmark, fwmask=r.fwmask, tos=r.tos))
    return out


def _devices_own(f: rtnl_parse.NeighMsg, vxlan: rtnl_parse.LinkMsg) -> bool:
    """The all-zeros entry a VXLAN device with a default remote (``remote``/``group``) holds for it, made and
    taken away with that setting (dst the remote, via its underlay device): the device's drift, not the FDB's."""
    d = vxlan.data
    return (f.lladdr == "00:00:00:00:00:00" and f.dst == d.get("group") and (f.ifindex or 0) == (d.get("link") or 0)
            and f.port is None and f.vni is None)


def _hand_fdb(snap: Snapshot, names: dict[int, str]) -> list[PortFdb]:
    """The entries of a bridge's FDB a hand added to stay (static, permanent: plan/bridge_fdb.py), on a port or on
    the bridge itself. Not the learned ones, nor the kernel's own: each port's and the bridge's MAC, permanent."""
    bridges = {link.index: link for link in snap.links.values() if link.kind == "bridge"}
    macs = {link.index: link.mac for link in snap.links.values()}
    out = []
    for f in snap.fdb:
        state = rtnl_bridge.kept_state(f.state, f.flags)
        if f.master not in bridges or state is None or not f.lladdr or f.index not in names:
            continue
        if state == "permanent" and f.lladdr in (macs.get(f.index), bridges[f.master].mac):
            continue
        out.append(PortFdb(netns=snap.netns, dev=names[f.index], lladdr=f.lladdr, master=bridges[f.master].name,
                           vlan=f.vlan, state=state, flags=rtnl_bridge.fdb_flag_words(f.flags)))
    return out


def _hop_quirks(r: rtnl_parse.RouteMsg, names: dict[int, str], dev: str | None) -> tuple[str, ...]:
    """A multipath route's hops that are not plain equal hops through the route's one device, as ``ip route``
    prints each (``via A weight 3``, ``via B dev inet0 onlink``): none when all are (weight 1, no flags, ``dev``)."""
    hops = list(zip(r.nexthops, r.hop_weights or [(1, 0)] * len(r.nexthops)))
    if all(weight == 1 and not flags and (dev is not None) for _, (weight, flags) in hops):
        return ()
    out = []
    for (gw, oif), (weight, flags) in hops:
        words = f"via {gw}" + (f" dev {names.get(oif, oif)}" if dev is None else "")
        words += (f" weight {weight}" if weight != 1 else "") + (" onlink" if flags & rtnl.RTNH_F_ONLINK else "")
        words += f" flags {flags & ~rtnl.RTNH_F_ONLINK:#x}" if flags & ~rtnl.RTNH_F_ONLINK else ""
        out.append(words)
    return tuple(out)


def _link(ns: str, link: rtnl_parse.LinkMsg, snap: Snapshot, names: dict[int, str], planned: Resource | None,
          peers: dict[str, Snapshot]) -> Link:
    common = dict(netns=ns, name=link.name, mtu=link.mtu or 0, mac=link.mac or "", up=link.up,
                  txqlen=link.txqlen if link.txqlen is not None else 0, flags=rtnl_parse.flag_words(link.flags))
    if link.name == "lo" and link.kind is None:
        return Loopback(**common)
    if link.kind == "bridge":
        return Bridge(**common, settings=tuple(link.data.get("settings", ())))
    if link.kind == "vxlan":
        d = link.data
        return Vxlan(**common, vni=d.get("id", 0), port=d.get("port", 0),
                     local=IPv4Address(d.get("local") or "0.0.0.0"), dev=names.get(d.get("link"), "?"),
                     learning=bool(d.get("learning")), **_vxlan_settings(d))
    if link.kind == "veth" and isinstance(planned, VethPeer):
        return VethPeer(**common)
    if link.kind == "veth" and isinstance(planned, Veth):
        peer_snap = peers.get(planned.peer_netns)
        peer = peer_snap.links.get(planned.peer_name) if peer_snap else None
        paired = peer is not None and peer.kind == "veth" and peer.peer == link.index and link.peer == peer.index
        master = names.get(link.master) if link.master else None
        return Veth(**common, peer_netns=planned.peer_netns if paired else "",
                    peer_name=planned.peer_name if paired else "", peer_mac=planned.peer_mac if paired else "",
                    master=master, hairpin=snap.hairpin.get(link.index, False),
                    port_state=_port_state(link, master, snap, planned),
                    port_settings=snap.port_settings.get(link.index, ()) if master and master == planned.master
                    else planned.port_settings)
    return Link(**common)


def _vxlan_settings(d: dict) -> dict:
    """A VXLAN device's settings that flanneld leaves at the kernel's defaults (plan.resources.Vxlan), as the
    kernel says them (rtnl_parse); a setting not said is the default."""
    group = d.get("group")
    ttl = "inherit" if d.get("ttl_inherit") else str(d["ttl"]) if d.get("ttl") else "auto"
    return dict(remote=IPv4Address(group) if group and group != "0.0.0.0" else None, ttl=ttl, tos=d.get("tos", 0),
                df=rtnl_vxlan.DF_NAMES.get(d.get("df", 0), str(d.get("df"))),
                ageing=d.get("ageing", rtnl_vxlan.DEFAULT_AGEING),
                options=tuple(word for word in rtnl_vxlan.OPTIONS if d.get(word)),
                udpcsum=bool(d.get("udp_csum", 1)), srcport=tuple(d.get("srcport", (0, 0))),
                maxaddress=d.get("limit", 0))


def _port_state(link: rtnl_parse.LinkMsg, master: str | None, snap: Snapshot, planned: Veth) -> str | None:
    """A bridge port's STP state, where it is a fault of its own.

    STP is off on netlab's bridges: the kernel disables a port that is down or has no carrier (its veth peer
    is down: IFF_RUNNING is off), and every port of a bridge that is down (whatever state a hand gave them
    meanwhile), and makes them forwarding again once both are up (br_stp_enable_port). That is the drift of
    the link or of the bridge, which status names and whose repair brings the port back by itself; so is a
    link that is no port of its planned bridge (enslaving it makes a new port, forwarding). There the port
    is reported in the planned state, not as a second fault."""
    want = planned.port_state
    bridge = snap.links.get(master) if master else None
    if want is None or master != planned.master or bridge is None or not bridge.up or not link.running:
        return want
    return snap.port_state.get(link.index)


def link_kind(r: Resource) -> str:
    """What a link is, in words: ``bridge``, ``veth``, or the kernel's kind."""
    return {"veth-peer": "veth", "link": "link"}.get(r.kind, r.kind)
