"""A namespace read whole, as the kernel reports it: one entry, then one dump per object kind.

``status`` and ``up``'s drift check read every namespace of a lab this way
(kernel/live.py keeps the sockets and adds the iptables and nftables text).
The namespace is entered once: to open its sockets (rtnetlink, if not open
yet, and nf_tables), read its legacy iptables tables and the sysctls that are
files (those of ``all`` and ``default``; an interface's come with its link, its IPv6 switch too).
Then one dump per object kind, the bridge ports' and the FDB only where a
bridge port or a VXLAN device makes them matter; the qdiscs' too (a root qdisc
someone added to a device is drift, and so is an ingress or clsact qdisc, whose
filters are counted: netlab/impair/stray.py).

Many namespaces are read by several processes (kernel/readmany.py).
"""

from __future__ import annotations

from typing import Sequence

from netlab.kernel import netlink, netns as nsmod, nfnl, nftgen, procsys, rtnl, rtnl_neigh, rtnl_parse, tc, \
    testhooks
from netlab.kernel.base import Snapshot
from netlab.plan.sysctls import IPV6_OFF, interface_setting, ipv6_interface

LEGACY_TABLES = "/proc/thread-self/net/ip_tables_names"


def as_asked(snap: Snapshot, sysctls: Sequence[str], tables: bool) -> bool:
    """Make a snapshot read with other sysctls (and the tables) one read with these: False when it lacks
    one of their files."""
    found, files = _from_links(snap.links, sysctls)
    if any(key not in snap.sysctls for key in files):
        return False
    snap.sysctls = {key: found[key] if key in found else snap.sysctls[key] for key in sysctls}
    if not tables:
        snap.tables, snap.nft_tables, snap.nft, snap.base_chains = {}, [], {}, []
    return True


def read_netns(netns: str, sysctls: Sequence[str], tables: bool, timeout: float,
                conn: netlink.Conn | None) -> tuple[Snapshot, netlink.Conn, list[str]]:
    """One namespace as the kernel reports it (its iptables-save text aside), the socket that read it,
    and the legacy iptables tables it has (their text is read by the caller)."""
    snap = Snapshot(netns=netns)
    what = f"dump of {netns}"
    nf = None
    legacy: list[str] = []
    with nsmod.entered(netns):
        if conn is None:
            conn = netlink.Conn(timeout=timeout)
        snap.links = {link.name: link for link in rtnl_parse.dump_links(conn, netns)}
        snap.sysctls, files = _from_links(snap.links, sysctls)
        read = procsys.read_sysctls_here(files)
        snap.sysctls.update((key, read[key]) for key in files)  # in the order asked
        if tables:
            legacy = _legacy_tables()
            nf = netlink.Conn(netlink.NETLINK_NETFILTER, timeout=timeout)
    if nf is not None:
        with nf:
            snap.nft_tables = nfnl.nft_tables(nf, f"nf_tables in {netns}")
            snap.nft_stamp = nftgen.stamp(nf) if snap.nft_tables else None
            if any(family == "ip" and name in nfnl.IPTABLES_TABLES for family, name in snap.nft_tables):
                snap.base_chains = nfnl.base_chains(nf, f"nf_tables chains in {netns}", nfnl.IPTABLES_TABLES)
    links = snap.links.values()
    if any(link.master for link in links):
        for m in conn.dump(what, rtnl.link_dump(rtnl.AF_BRIDGE)):  # `bridge link`: the ports' own settings
            port = rtnl_parse.parse_bridge_port(m)
            snap.hairpin[port.index] = port.hairpin
            snap.port_settings[port.index] = port.settings
            if port.state is not None:
                snap.port_state[port.index] = port.state
    snap.addrs = [rtnl_parse.parse_addr(m) for m in conn.dump(what, rtnl.addr_dump())]
    snap.routes = rtnl_parse.parse_routes(conn.dump(what, rtnl.route_dump()))
    snap.neighs = [rtnl_parse.parse_neigh(m) for m in conn.dump(what, rtnl.neigh_dump(rtnl.AF_INET))]
    snap.proxies = [rtnl_parse.parse_neigh(m) for m in conn.dump(what, rtnl_neigh.proxy_dump())]
    if any(link.kind in ("vxlan", "bridge") for link in links):  # a bridge's: the entries a hand added
        snap.fdb = [rtnl_parse.parse_neigh(m) for m in conn.dump(what, rtnl.neigh_dump(rtnl.AF_BRIDGE))]
    snap.rules = [rtnl_parse.parse_rule(m) for m in conn.dump(what, rtnl.rule_dump())]
    qdiscs = [m for m in conn.dump(what, rtnl.qdisc_dump()) if m.mtype == rtnl.RTM_NEWQDISC]
    snap.root_qdiscs = dict(root for root in map(rtnl_parse.added_root_qdisc, qdiscs) if root is not None)
    for index, body in snap.root_qdiscs.items():  # rare: a hand's; its classes, the qdiscs under them, filters
        classes = [m for m in conn.dump(what, tc.class_dump(index)) if m.mtype == tc.RTM_NEWTCLASS]
        n_classes, n_qdiscs, parents = rtnl_parse.tc_parents(index, body, classes, qdiscs)
        filters = rtnl_parse.count_filters([conn.dump(what, rtnl.filter_dump(index, p)) for p in parents])
        snap.root_qdisc_under[index] = (n_classes, n_qdiscs, filters)
    for index, kind in filter(None, map(rtnl_parse.added_ingress_qdisc, qdiscs)):  # rare: a hand's
        parents = (rtnl.TC_H_INGRESS_FILTERS, rtnl.TC_H_EGRESS_FILTERS) if kind == "clsact" else \
            (rtnl.TC_H_INGRESS_FILTERS,)
        dumps = [conn.dump(what, rtnl.filter_dump(index, parent)) for parent in parents]
        snap.ingress_qdiscs[index] = (kind, rtnl_parse.count_filters(dumps))
    return snap, conn, legacy


def _from_links(links: dict[str, rtnl_parse.LinkMsg], keys: Sequence[str]) -> tuple[dict[str, str | None], list[str]]:
    """The sysctls of ``keys`` that an interface's link message holds (None: no such interface), and the
    others, which are files (those of ``all`` and ``default``)."""
    found: dict[str, str | None] = {}
    files = []
    for key in keys:
        own = interface_setting(key)
        six = ipv6_interface(key)
        if six is not None and not testhooks.NO_IPV6:  # the hook's kernel has no IPv6: its files say so
            if six not in links:
                found[key] = None
            elif IPV6_OFF in links[six].inet6_conf:
                found[key] = links[six].inet6_conf[IPV6_OFF]
            else:
                files.append(key)  # no IPv6 on it: its file is absent, or "1" on a kernel without IPv6
        elif own is not None and own[0] not in links:
            found[key] = None
        elif own is not None and own[1] in links[own[0]].inet_conf:
            found[key] = links[own[0]].inet_conf[own[1]]
        else:
            files.append(key)
    return found, files


def _legacy_tables() -> list[str]:
    """Tables of the legacy iptables backend loaded in the calling thread's namespace."""
    try:
        with open(LEGACY_TABLES) as fh:
            return [line.strip() for line in fh if line.strip()]
    except FileNotFoundError:
        return []
