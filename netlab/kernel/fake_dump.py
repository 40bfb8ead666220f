"""What the fake kernel's dumps answer (netlab.kernel.fake): a namespace's objects as the messages the real
kernel's netlink dumps decode to (kernel/rtnl_parse), its sysctls as their files read, and its rule tables as
``iptables-save`` and ``nft -j list`` print them."""

from __future__ import annotations

from typing import Sequence

from netlab.kernel import rtnl
from netlab.kernel.base import Snapshot
from netlab.kernel.fake_iptables import BUILTIN, save_table
from netlab.kernel.fake_objects import PLAIN_REMOTE, FNetns
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg, NeighMsg, RouteMsg, RuleMsg, flag_bits
from netlab.kernel.rtnl_bridge import FDB_FLAGS, FDB_KEPT, canonical
from netlab.kernel.rtnl_vxlan import FDB_STATES


def _data(link) -> dict:
    """A link's kind's settings as parse_link says them: a VXLAN device's, a bridge's in its words."""
    return {"settings": canonical(link.settings, "bridge")} if link.kind == "bridge" else dict(link.vxlan)


def dump(namespaces: dict[str, FNetns], ns: FNetns, running: set[str], sysctls: Sequence[str] = (),
         tables: bool = True) -> Snapshot:
    """Namespace ``ns`` as a snapshot reads it: its links (a veth's peer's index from ``namespaces``; ``running``:
    the links with carrier), addresses, routes, neighbours, FDB entries and rules, the ``sysctls`` asked, and its
    rule tables when ``tables``."""
    snap = Snapshot(netns=ns.name)
    for link in ns.links.values():
        master = ns.links[link.master].index if link.master in ns.links else None
        peer = nsid = None
        if link.peer and link.peer[0] in namespaces and link.peer[1] in namespaces[link.peer[0]].links:
            peer = namespaces[link.peer[0]].links[link.peer[1]].index
            # IFLA_LINK_NETNSID: only for a peer in another namespace (a number of this one's for it)
            nsid = list(namespaces).index(link.peer[0]) if link.peer[0] != ns.name else None
        lo = rtnl.IFF_LOOPBACK if link.name == "lo" and link.kind is None else 0
        flags = flag_bits(link.flags, bool(lo))[0] | lo | (rtnl.IFF_UP if link.up else 0) if link.flags else None
        snap.links[link.name] = LinkMsg(index=link.index, name=link.name, kind=link.kind, up=link.up, mtu=link.mtu,
                                        mac=link.mac, master=master, peer=peer, peer_netnsid=nsid,
                                        alias=link.alias, group=link.group, txqlen=link.txqlen,
                                        data=_data(link), running=link.name in running, flags=flags)
        if link.vxlan.get("group"):  # the device's own all-zeros entry, to its default remote via its device
            snap.fdb.append(NeighMsg(rtnl.AF_BRIDGE, link.index, link.vxlan["group"], "00:00:00:00:00:00",
                                     rtnl.NUD_PERMANENT | rtnl.NUD_REACHABLE, rtnl.NTF_SELF, None,
                                     ifindex=link.vxlan["link"]))
        if link.master:
            snap.hairpin[link.index] = link.hairpin
            snap.port_settings[link.index] = canonical(link.port_settings)
            bridge = ns.links.get(link.master)
            enabled = link.name in running and bridge is not None and bridge.up
            snap.port_state[link.index] = link.port_state if enabled else "disabled"
    for dev, body in ns.qdiscs.items():  # rtnl_parse.added_root_qdisc's
        snap.root_qdiscs[ns.links[dev].index] = body
    for a in ns.addrs:
        snap.addrs.append(AddrMsg(ns.links[a.dev].index, str(a.address.ip), a.address.network.prefixlen,
                                  str(a.broadcast) if a.broadcast else None, rtnl.scope_num(a.scope), a.dev,
                                  flags=rtnl.IFA_F_NOPREFIXROUTE if a.noprefixroute else 0, metric=a.metric,
                                  valid_lft=a.valid_lft, preferred_lft=a.preferred_lft))
    for r in ns.all_routes():
        snap.routes.append(RouteMsg(table=r.table, dst=str(r.dst.network_address), dst_len=r.dst.prefixlen, tos=r.tos,
                                    gateway=str(r.gateway) if r.gateway else None,
                                    oif=ns.links[r.dev].index if r.dev and not r.nexthops else None,
                                    proto=rtnl.proto_num(r.proto),
                                    scope=rtnl.scope_num(r.scope), type=rtnl.type_num(r.type),
                                    flags=rtnl.RTNH_F_ONLINK if r.onlink else 0, priority=r.metric or None,
                                    prefsrc=str(r.src) if r.src else None, multipath=bool(r.nexthops),
                                    metrics=r.metrics,
                                    nexthops=tuple((str(gw), ns.links[r.dev].index if r.dev else 0)
                                                   for gw in r.nexthops)))
    for (dev, ip), (mac, state) in ns.neighs.items():
        snap.neighs.append(NeighMsg(rtnl.AF_INET, ns.links[dev].index, ip, mac, state, 0, None))
    for dev, mac, dst in ns.fdb:
        port, vni, via, state = ns.fdb_extra.get((dev, mac, dst), PLAIN_REMOTE)
        snap.fdb.append(NeighMsg(rtnl.AF_BRIDGE, ns.links[dev].index, dst, mac, FDB_STATES[state], rtnl.NTF_SELF,
                                 None, port=port, vni=vni, ifindex=ns.links[via].index if via in ns.links else None))
    for (dev, mac, vlan), (state, words) in ns.port_fdb.items():
        master = ns.links[dev].master if ns.links[dev].kind != "bridge" else dev
        flags = sum(bit for bit, word in FDB_FLAGS if word in words)
        snap.fdb.append(NeighMsg(rtnl.AF_BRIDGE, ns.links[dev].index, None, mac, FDB_KEPT[state], flags,
                                 ns.links[master].index if master in ns.links else None, vlan=vlan))
    for r in ns.rules:
        snap.rules.append(RuleMsg(priority=r.priority, table=r.table, action=rtnl.action_num(r.action),
                                  src=str(r.src.network_address) if r.src else None,
                                  src_len=r.src.prefixlen if r.src else 0,
                                  dst=str(r.dst.network_address) if r.dst else None,
                                  dst_len=r.dst.prefixlen if r.dst else 0, iif=r.iif, oif=r.oif,
                                  fwmark=r.fwmark, fwmask=r.fwmask, tos=r.tos))
    for key in sysctls:
        snap.sysctls[key] = ns.sysctl(key)
    if tables:
        for backend, tabs in ns.tables.items():
            snap.tables[backend] = {name: save_table(name, t) for name, t in tabs.items()}
        # nf_tables in miniature: the listing the last transaction made (see realize/nftables.listing)
        snap.nft = {key: {"netlab-listing": list(t.listing)} for key, t in ns.nft.items()}
        snap.nft_tables = [("ip", name) for name in ns.tables.get("", {})] + list(ns.nft)
        snap.base_chains = [(name, c) for name, t in ns.tables.get("", {}).items()
                            for c in BUILTIN.get(name, ()) if c in t.hooked]
    return snap
