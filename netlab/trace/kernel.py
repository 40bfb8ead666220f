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

conntrack through ``conntrack -L`` (netlab.kernel.conntrack), and the nat
table through ``iptables-save -c -t nat`` (netlab.kernel.iptables), parsed
here: their text is what a learner compares with. The nat table is read
twice around the packet, so each rule's counter says whether the packet (or
something else at the same time) crossed it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, replace
from typing import Any, Mapping

from netlab.kernel import conntrack, iptables, netlink, netns as nsmod, nft, procsys, rtnl, rtnl_parse, sockdiag
from netlab.realize import nftables as nftlisting
from netlab.trace.facts import (CtEntry, FdbFacts, LinkFacts, NatRule, NatTable, NeighFacts, NftTable, RouteFacts,
                                RouteFailure, VxlanFacts)
from netlab.trace.flow import Flow

NUD = [(0x80, "PERMANENT"), (0x40, "NOARP"), (0x02, "REACHABLE"), (0x04, "STALE"), (0x08, "DELAY"),
       (0x10, "PROBE"), (0x20, "FAILED"), (0x01, "INCOMPLETE")]
BR_STATES = rtnl.BR_STATES  # a bridge port's STP state by number, as `bridge link` names it


def nud_state(state: int) -> str:
    for bit, name in NUD:
        if state & bit:
            return name
    return "NONE"


def _fdb_state(state: int) -> str:
    if state & rtnl.NUD_PERMANENT:
        return "permanent"
    if state & rtnl.NUD_NOARP:
        return "static"
    return "learned"


@dataclass(frozen=True)
class BridgePort:
    """A bridge port as ``bridge -d link`` shows it."""

    index: int
    name: str
    master: int | None
    state: int | None  # BR_STATES
    hairpin: bool
    learning: bool


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
                      learning=bool(netlink.get_u8(a, rtnl.IFLA_BRPORT_LEARNING)))


class LiveKernel:
    """:class:`netlab.trace.facts.Kernel` answered by the running kernel (links, FDB, conntrack cached)."""

    def __init__(self, timeout: float = netlink.DEFAULT_TIMEOUT):
        self.timeout = timeout
        self._conns: dict[str, netlink.Conn] = {}
        self._links: dict[str, dict[str, LinkFacts]] = {}
        self._byindex: dict[str, dict[int, str]] = {}
        self._fdb: dict[str, list[FdbFacts]] = {}
        self._ct: dict[tuple[str, str], list[CtEntry]] = {}
        self._neigh_before: dict[str, list[rtnl_parse.NeighMsg]] = {}
        self._brnf: dict[str, bool] = {}
        self._nat: dict[str, NatTable | None] = {}
        self._nat_before: dict[str, NatTable | None] = {}
        self._filter: dict[str, NatTable | None] = {}
        self._filter_before: dict[str, NatTable | None] = {}
        # namespace -> the NetworkPolicy chains whose REJECT counted the packet (run.py: counters before and after)
        self.policy_rejects: dict[str, list[str]] = {}
        # namespace -> its filter table as read right after the packet (run.py, with counters): not read again
        self.filters_after: dict[str, str] = {}
        self._nft: dict[str, NftTable | None] = {}
        self._nft_before: dict[str, NftTable | None] = {}

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
        addrs: dict[int, list[str]] = {}
        for a in map(rtnl_parse.parse_addr, c.dump(f"addresses in {netns}", rtnl.addr_dump())):
            addrs.setdefault(a.index, []).append(f"{a.address}/{a.prefixlen}")
        ports = {p.index: p for p in self.bridge_port_list(netns)}
        out: dict[str, LinkFacts] = {}
        for link in raw:
            vx = None
            if link.kind == "vxlan":
                d = link.data
                vx = VxlanFacts(vni=d.get("id", 0), port=d.get("port", 0), local=d.get("local"),
                                dev=names.get(d.get("link") or 0), learning=bool(d.get("learning")))
            port = ports.get(link.index)
            state = BR_STATES.get(port.state) if port is not None and port.state is not None else None
            out[link.name] = LinkFacts(
                name=link.name, index=link.index, kind=link.kind, mac=link.mac, mtu=link.mtu or 0, up=link.up,
                master=names.get(link.master) if link.master else None, hairpin=port.hairpin if port else None,
                vxlan=vx, addresses=tuple(addrs.get(link.index, ())), operstate=link.operstate, port_state=state)
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

    def route_get(self, netns: str, dst: str, src: str | None = None, iif: str | None = None) -> RouteFacts:
        index = None
        if iif:
            link = self.links(netns).get(iif)
            if link is None:
                raise RouteFailure(errno.ENODEV, f"no device {iif}")
            index = link.index
        c = self.conn(netns)
        what = f"route get {dst} in {netns}"
        try:
            ans = rtnl_parse.parse_route(c.get(what, rtnl.route_get(dst, src, index)))
        except netlink.NetlinkTimeout:
            raise
        except netlink.NetlinkError as exc:  # the kernel's answer: no route, invalid source ...
            raise RouteFailure(exc.errno, os.strerror(exc.errno)) from None
        matched = None
        try:
            fib = rtnl_parse.parse_route(c.get(what, rtnl.route_get(dst, src, index, True)))
            matched = self._route_text(netns, fib)
        except netlink.NetlinkError:
            pass
        return RouteFacts(type=rtnl.ROUTE_TYPE_NAMES.get(ans.type, str(ans.type)),
                          oif=self.ifname(netns, ans.oif) if ans.oif else None, gateway=ans.gateway,
                          prefsrc=ans.prefsrc, matched=matched)

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
        if r.flags & rtnl.RTNH_F_ONLINK:
            text += " onlink"
        return text

    def routes(self, netns: str) -> list[dict[str, Any]]:
        """``ip route``: the main table."""
        out = []
        for r in rtnl_parse.parse_routes(self.conn(netns).dump(f"routes in {netns}", rtnl.route_dump())):
            if r.table != rtnl.RT_TABLE_MAIN:
                continue
            out.append({"dst": f"{r.dst}/{r.dst_len}" if r.dst_len else "default", "gateway": r.gateway,
                        "dev": self.ifname(netns, r.oif) if r.oif else None, "prefsrc": r.prefsrc,
                        "proto": rtnl.PROTO_NAMES.get(r.proto, str(r.proto)), "scope": rtnl.SCOPE_NAMES.get(r.scope),
                        "type": rtnl.ROUTE_TYPE_NAMES.get(r.type), "onlink": bool(r.flags & rtnl.RTNH_F_ONLINK),
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
        return NeighFacts(ip=ip, dev=dev, lladdr=n.lladdr, state=nud_state(n.state))

    def neighbours_before(self, netns: str, entries: list[rtnl_parse.NeighMsg]) -> None:
        """Keep ``netns``'s neighbour entries as they were before the packet (:meth:`neigh_state_before`)."""
        self._neigh_before[netns] = entries

    def neigh_state_before(self, netns: str, dev: str, ip: str) -> str | None:
        """The state of the entry for ``ip`` on ``dev`` before the packet, "no entry" when there was none; None:
        not read."""
        link = self.links(netns).get(dev)
        if netns not in self._neigh_before or link is None:
            return None
        n = next((n for n in self._neigh_before[netns] if n.index == link.index and n.dst == ip), None)
        return nud_state(n.state) if n is not None else "no entry"

    def neighbours(self, netns: str) -> list[dict[str, Any]]:
        out = []
        for n in self._neigh_dump(netns):
            state = nud_state(n.state)
            if state == "NOARP":  # multicast/broadcast/loopback entries `ip neigh` hides too
                continue
            out.append({"dst": n.dst, "dev": self.ifname(netns, n.index), "lladdr": n.lladdr, "state": state})
        return out

    def fdb(self, netns: str) -> list[FdbFacts]:
        if netns not in self._fdb:
            out = []
            dump = self.conn(netns).dump(f"fdb in {netns}", rtnl.neigh_dump(rtnl.AF_BRIDGE))
            for n in map(rtnl_parse.parse_neigh, dump):
                if not n.lladdr:
                    continue
                out.append(FdbFacts(lladdr=n.lladdr, dev=self.ifname(netns, n.index) or str(n.index),
                                    master=self.ifname(netns, n.master) if n.master else None, dst=n.dst,
                                    state=_fdb_state(n.state), self_=bool(n.flags & rtnl.NTF_SELF)))
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

    def filter_policy(self, netns: str, chain: str) -> str | None:
        """The policy of a built-in chain of the filter table (``iptables -S CHAIN``'s ``-P`` line): from the table
        read right after the packet (``filters_after``), else read now."""
        from netlab.kernel import iptables

        text = self.filters_after.get(netns)
        try:
            text = iptables.save(netns, "filter") if text is None else text
        except Exception:  # no iptables, or the namespace is gone: nothing to say
            return None
        return next((line.split()[1] for line in text.splitlines() if line.startswith(f":{chain} ")), None)

    def nft_ruleset(self, netns: str) -> dict[str, Any] | None:
        """``nft -j list ruleset`` in ``netns``: every nf_tables table, chain and rule (None: not readable)."""
        from netlab.kernel import nft

        try:
            return nft.list_ruleset(netns)
        except Exception:  # no nft, or the namespace is gone: nothing to say
            return None

    # -- conntrack

    def conntrack(self, netns: str, proto: str) -> list[CtEntry]:
        key = (netns, proto)
        if key not in self._ct:
            self._ct[key] = read_conntrack(netns, proto)
        return self._ct[key]

    def snapshot_conntrack(self, namespaces: list[str], proto: str,
                           confirmed: dict[str, list[tuple[dict[str, str], dict[str, str]]]] | None = None) -> None:
        """Read the entries now (right after the packet, before its socket closes), with those the namespaces
        confirmed meanwhile that are gone already (``confirmed``: their NEW events, conntrack.NewEntries)."""
        for ns in namespaces:
            entries = read_conntrack(ns, proto)
            known = {e.orig for e in entries}
            # as `conntrack -E` says it; made for the packet (by its first one: the rules chose its NAT)
            heard = [replace(ct_entry(proto, orig, reply, flags=("DESTROYED",)), made_before=False)
                     for orig, reply in (confirmed or {}).get(ns, [])]
            if confirmed is not None and ns in confirmed:
                new = {e.orig for e in heard}
                entries = [replace(e, made_before=e.orig not in new) for e in entries]
            entries += [e for e in heard if e.orig not in known]
            self._ct[(ns, proto)] = entries


    # -- kube-proxy's rules

    def nat_table(self, netns: str) -> NatTable | None:
        if netns not in self._nat:
            self._nat[netns] = read_nat_table(netns, self._nat_before.get(netns))
        return self._nat[netns]

    def filter_table(self, netns: str) -> NatTable | None:
        if netns not in self._filter:
            self._filter[netns] = read_nat_table(netns, self._filter_before.get(netns), "filter")
        return self._filter[netns]

    def count_nat_before(self, namespaces: list[str], filters: Mapping[str, str] | None = None) -> None:
        """Read the nat tables' counters now (before the packet): :meth:`nat_table` then has each rule's delta;
        the filter tables' too (kube-proxy's REJECT of a Service without endpoints), from ``filters`` when given
        (netns -> ``iptables-save -c -t filter``, read once for the policies' counters too; a namespace left out
        could not be read). kube-proxy's nftables table too: its affinity sets, and the counters a user added,
        before the packet say whether one chose."""
        for ns in namespaces:
            self._nat_before[ns] = read_nat_table(ns)
            self._filter_before[ns] = _filter_of(ns, filters)
            self._nft_before[ns] = read_nft_table(ns)

    def count_masquerades_before(self, namespaces: list[str]) -> None:
        """Read the nat tables' counters now (before the packet) where :meth:`count_nat_before` did not: the
        MASQUERADE rule of Flannel's or of the gateway's whose counter then moves is the one that masqueraded it."""
        for ns in namespaces:
            if ns not in self._nat_before:
                self._nat_before[ns] = read_nat_table(ns)

    def snapshot_nat(self, namespaces: list[str], filters: Mapping[str, str] | None = None) -> None:
        """Read the nat tables now (right after the packet); the filter tables from ``filters`` when given."""
        for ns in namespaces:
            self._nat[ns] = read_nat_table(ns, self._nat_before.get(ns))
            self._filter[ns] = _filter_of(ns, filters, self._filter_before.get(ns))
            self._nft[ns] = read_nft_table(ns, self._nft_before.get(ns))

    def nft_table(self, netns: str) -> NftTable | None:
        if netns not in self._nft:
            self._nft[netns] = read_nft_table(netns, self._nft_before.get(netns))
        return self._nft[netns]


def _filter_of(netns: str, filters: Mapping[str, str] | None, before: NatTable | None = None) -> NatTable | None:
    """The namespace's filter table: parsed from ``filters`` (texts already read), else read now."""
    if filters is None:
        return read_nat_table(netns, before, "filter")
    text = filters.get(netns)
    return parse_nat_table(text, before) if text is not None else None


def read_nft_table(netns: str, before: NftTable | None = None) -> NftTable | None:
    """kube-proxy's table (nftables mode) in the plan's words; an empty one that does not exist when the kernel has
    no such table, None when it cannot be read."""
    try:
        data = nft.list_table(netns, "ip", "kube-proxy")
    except (nft.NftError, OSError):
        return None
    if data is None:
        return NftTable(frozenset(), {}, {}, exists=False)
    return nft_table_of(data, before)


def nft_table_of(data: dict, before: NftTable | None = None) -> NftTable:
    listed = nftlisting.chain_rules(data)
    rules = {chain: tuple(text for text, _ in items) for chain, items in listed.items()}
    counters = {chain: tuple(c for _, c in items) for chain, items in listed.items()}
    elements = {s["name"]: tuple(nftlisting.elements_of(s)) for s in nftlisting.sets_of(data) if s.get("name")}
    return NftTable(frozenset(nftlisting.listing(data)), rules, elements,
                    before.elements if before is not None else None, counters=counters,
                    counters_before=before.counters if before is not None else None)


def read_nat_table(netns: str, before: NatTable | None = None, table: str = "nat") -> NatTable | None:
    """``iptables-save -c -t TABLE`` (nat, or filter), parsed; None when it cannot be read."""
    try:
        text = iptables.save(netns, table, counters=True)
    except (iptables.IptablesError, OSError):
        return None
    return parse_nat_table(text, before)


def parse_nat_table(text: str, before: NatTable | None = None) -> NatTable:
    """``iptables-save -c -t nat``: chains, and rules with their packet counters (deltas against ``before``)."""
    chains: set[str] = set()
    rules: list[NatRule] = []
    counted: dict[str, list[int]] = {}
    for r in before.rules if before else ():
        counted.setdefault(r.line, []).append(r.packets)
    for line in text.splitlines():
        if line.startswith(":"):
            chains.add(line[1:].split()[0])
            continue
        packets = 0
        if line.startswith("["):
            counters, _, line = line.partition("] ")
            packets = int(counters[1:].split(":")[0] or 0)
        if not line.startswith("-A "):
            continue
        earlier = counted.get(line)
        delta = packets - earlier.pop(0) if earlier else None
        rules.append(NatRule(line, packets, delta))
    return NatTable(frozenset(chains), tuple(rules))


def read_conntrack(netns: str, proto: str) -> list[CtEntry]:
    return [e for e in map(parse_conntrack, conntrack.list_entries(netns, proto)) if e is not None]


def parse_conntrack(line: str) -> CtEntry | None:
    """One line of ``conntrack -L``: the original tuple, then the reply tuple."""
    words = line.split()
    if not words:
        return None
    proto = words[0]
    if proto not in ("tcp", "udp", "icmp"):
        return None
    state = words[3] if proto == "tcp" and len(words) > 3 and "=" not in words[3] else None
    tuples: list[dict[str, str]] = []
    flags = []
    for w in words[1:]:
        if w.startswith("[") and w.endswith("]"):
            flags.append(w.strip("[]"))
            continue
        if "=" not in w:
            continue
        k, v = w.split("=", 1)
        if k == "src":
            tuples.append({})
        if tuples and k in ("src", "dst", "sport", "dport", "id", "type", "code"):
            tuples[-1].setdefault(k, v)
    if len(tuples) < 2:
        return None

    return ct_entry(proto, tuples[0], tuples[1], state, tuple(flags))


def ct_entry(proto: str, orig: dict[str, str], reply: dict[str, str], state: str | None = None,
             flags: tuple[str, ...] = ()) -> CtEntry:
    """An entry from its two tuples as text (src, dst, and sport and dport, or an ICMP id)."""
    def flow(t: dict[str, str]) -> Flow:
        if proto == "icmp":
            ident = int(t["id"]) if "id" in t else None
            return Flow("icmp", t["src"], t["dst"], ident, ident)
        return Flow(proto, t["src"], t["dst"], int(t.get("sport", 0)), int(t.get("dport", 0)))

    return CtEntry(orig=flow(orig), reply=flow(reply), state=state, flags=flags)
