"""Read the live kernel back and compare it with the plan (the controller's diff).

Everything is read through netlink dumps in each of the lab's namespaces (and
``/proc/sys`` for sysctls), turned into the same resource dataclasses the
plan uses, and compared by identity key:

* missing:   in the plan, not in the kernel;
* different: same key, other values (a veth's MAC, a route's gateway);
* extra:     in one of the lab's namespaces, not in the plan (links other than
             ``lo``, addresses, non-kernel routes, PERMANENT neighbours, VXLAN
             FDB entries). Kernel-made objects (connected routes, learned
             neighbours, bridge FDB) are not the lab's and are ignored.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Iterable

from pyroute2.netlink.exceptions import NetlinkError

from netlab.plan.build import Plan
from netlab.plan.resources import Address, Fdb, Link, NatRules, Neigh, Resource, Route, Sysctl, Veth, Vxlan
from netlab.realize import netns as nsmod
from netlab.realize.netlink import NUD_PERMANENT, RT_TABLE_MAIN, RTNH_F_ONLINK, RTPROT_KERNEL, Sockets

AF_BRIDGE = 7


@dataclass(frozen=True)
class Drift:
    state: str  # missing | extra | different
    resource: Resource  # the planned one (missing/different) or the live one (extra)
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.state}: {self.resource.describe()}"
        return f"{text} ({self.detail})" if self.detail else text

    def to_json(self) -> dict:
        return {"state": self.state, "object": self.resource.describe(), "detail": self.detail,
                "resource": self.resource.to_json()}


@dataclass
class LiveLink:
    name: str
    index: int
    kind: str | None
    mtu: int
    mac: str
    up: bool
    master: str | None
    peer_index: int | None
    hairpin: bool
    data: dict


class LiveNetns:
    """One namespace as the kernel reports it."""

    def __init__(self, netns: str, s: Sockets):
        self.netns = netns
        ipr = s(netns)
        raw = list(ipr.get_links())
        names = {link["index"]: link.get("IFLA_IFNAME") for link in raw}
        hairpin: dict[int, bool] = {}
        try:
            for port in ipr.link("dump", family=AF_BRIDGE):
                info = port.get("IFLA_PROTINFO")
                if info is not None:
                    hairpin[port["index"]] = bool(info.get("IFLA_BRPORT_MODE"))
        except NetlinkError:
            pass
        self.links: dict[str, LiveLink] = {}
        for link in raw:
            info = link.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info else None
            data = {}
            if info and info.get("IFLA_INFO_DATA"):
                data = {k: v for k, v in info.get("IFLA_INFO_DATA")["attrs"] if k != "UNKNOWN"}
            name = link.get("IFLA_IFNAME")
            self.links[name] = LiveLink(
                name=name, index=link["index"], kind=kind, mtu=link.get("IFLA_MTU"),
                mac=link.get("IFLA_ADDRESS"), up=bool(link["flags"] & 1),
                master=names.get(link.get("IFLA_MASTER")), peer_index=link.get("IFLA_LINK"),
                hairpin=hairpin.get(link["index"], False), data=data,
            )
        self.by_index = {link.index: link for link in self.links.values()}
        self.addresses = [
            Address(netns=netns, dev=self.by_index[a["index"]].name,
                    address=IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"))
            for a in ipr.get_addr(family=socket.AF_INET)
            if a["index"] in self.by_index and self.by_index[a["index"]].name != "lo"  # lo's 127.0.0.1 is the kernel's
        ]
        self.routes: list[Route] = []
        for r in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
            if r["proto"] == RTPROT_KERNEL or r.get("RTA_TABLE", r["table"]) != RT_TABLE_MAIN:
                continue
            oif = self.by_index.get(r.get("RTA_OIF"))
            gw = r.get("RTA_GATEWAY")
            self.routes.append(Route(netns=netns, dst=IPv4Network(f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}"),
                                     gateway=IPv4Address(gw) if gw else None, dev=oif.name if oif else "?",
                                     onlink=bool(r["flags"] & RTNH_F_ONLINK)))
        self.neighbours: list[Neigh] = []
        for n in ipr.get_neighbours(family=socket.AF_INET):
            dev = self.by_index.get(n["ifindex"])
            if n["state"] & NUD_PERMANENT and dev is not None and n.get("NDA_DST"):
                self.neighbours.append(Neigh(netns=netns, dev=dev.name, dst=IPv4Address(n.get("NDA_DST")),
                                             lladdr=n.get("NDA_LLADDR") or ""))
        self.fdb: list[Fdb] = []
        for link in self.links.values():
            if link.kind != "vxlan":
                continue
            for entry in ipr.fdb("dump", ifindex=link.index):
                dst = entry.get("NDA_DST")
                if dst and entry.get("NDA_LLADDR") != "00:00:00:00:00:00":
                    self.fdb.append(Fdb(netns=netns, dev=link.name, lladdr=entry.get("NDA_LLADDR"),
                                        dst=IPv4Address(dst)))


def _link_diff(planned: Link, live: LiveLink | None, peers: dict[str, LiveNetns]) -> str | None:
    """None when the live link matches the plan, else what differs."""
    if live is None:
        return "missing"
    problems = []
    want_kind = {"bridge": "bridge", "veth": "veth", "vxlan": "vxlan"}[planned.kind]
    if live.kind != want_kind:
        return f"is a {live.kind or 'plain'} link, want {want_kind}"
    if live.mtu != planned.mtu:
        problems.append(f"mtu {live.mtu}, want {planned.mtu}")
    if live.mac != planned.mac:
        problems.append(f"mac {live.mac}, want {planned.mac}")
    if not live.up:
        problems.append("down")
    if isinstance(planned, Veth):
        if live.master != planned.master:
            problems.append(f"master {live.master}, want {planned.master}")
        if live.hairpin != planned.hairpin:
            problems.append(f"hairpin {'on' if live.hairpin else 'off'}, want {'on' if planned.hairpin else 'off'}")
        peer_ns = peers.get(planned.peer_netns)
        peer = peer_ns.links.get(planned.peer_name) if peer_ns else None
        if peer is None or peer.kind != "veth" or peer.peer_index != live.index or live.peer_index != peer.index:
            problems.append(f"peer {planned.peer_name} in {planned.peer_netns} missing")
        else:
            if peer.mac != planned.peer_mac:
                problems.append(f"peer mac {peer.mac}, want {planned.peer_mac}")
            if peer.mtu != planned.mtu:
                problems.append(f"peer mtu {peer.mtu}, want {planned.mtu}")
            if not peer.up:
                problems.append(f"peer {planned.peer_name} down")
    if isinstance(planned, Vxlan):
        d = live.data
        want = {"IFLA_VXLAN_ID": planned.vni, "IFLA_VXLAN_PORT": planned.port,
                "IFLA_VXLAN_LOCAL": str(planned.local), "IFLA_VXLAN_LEARNING": 0}
        for key, value in want.items():
            if d.get(key) != value:
                problems.append(f"{key[11:].lower()} {d.get(key)}, want {value}")
    return ", ".join(problems) or None


def diff(plan: Plan, s: Sockets, namespaces: Iterable[str] | None = None) -> list[Drift]:
    """Compare the plan with the kernel, for all or some of the lab's namespaces."""
    wanted_ns = list(namespaces) if namespaces is not None else plan.netns
    out: list[Drift] = []
    live: dict[str, LiveNetns] = {}
    planned_ns = {r.netns for r in plan.of_kind("netns")}
    for ns in wanted_ns:
        if ns in planned_ns and not nsmod.is_netns_mount(ns):
            out.append(Drift("missing", next(r for r in plan.of_kind("netns") if r.netns == ns)))
            continue
        live[ns] = LiveNetns(ns, s)
    # A veth's peer may be in a namespace outside the subset asked for.
    for r in plan.of_kind("veth"):
        if r.netns in live and r.peer_netns not in live and nsmod.is_netns_mount(r.peer_netns):
            live[r.peer_netns] = LiveNetns(r.peer_netns, s)

    planned_keys = {r.key for r in plan.resources}
    for r in plan.resources:
        if r.netns not in live or r.kind == "netns" or r.netns not in wanted_ns:
            continue
        ns = live[r.netns]
        if isinstance(r, Link):
            problem = _link_diff(r, ns.links.get(r.name), live)
            if problem == "missing":
                out.append(Drift("missing", r))
            elif problem:
                out.append(Drift("different", r, problem))
        elif isinstance(r, Sysctl):
            with nsmod.entered(r.netns):
                value = nsmod.read_sysctl_here(r.name)
            if value != r.value:
                out.append(Drift("different", r, f"is {value}, want {r.value}"))
        elif isinstance(r, Address):
            if r not in ns.addresses:
                out.append(Drift("missing", r))
        elif isinstance(r, Route):
            match = next((x for x in ns.routes if x.dst == r.dst), None)
            if match is None:
                out.append(Drift("missing", r))
            elif match != r:
                out.append(Drift("different", r, f"live: {match.describe()}"))
        elif isinstance(r, Neigh):
            match = next((x for x in ns.neighbours if x.key == r.key), None)
            if match is None:
                out.append(Drift("missing", r))
            elif match.lladdr != r.lladdr:
                out.append(Drift("different", r, f"lladdr {match.lladdr}, want {r.lladdr}"))
        elif isinstance(r, Fdb):
            match = next((x for x in ns.fdb if x.key == r.key), None)
            if match is None:
                out.append(Drift("missing", r))
            elif match.dst != r.dst:
                out.append(Drift("different", r, f"dst {match.dst}, want {r.dst}"))
        elif isinstance(r, NatRules):
            out += _nat_diff(r)

    # Extras: objects in the lab's namespaces that the plan does not have.
    peer_ends = {(r.peer_netns, r.peer_name) for r in plan.of_kind("veth")}
    for ns_name in wanted_ns:
        ns = live.get(ns_name)
        if ns is None:
            continue
        for link in ns.links.values():
            if link.name == "lo" or ("link", ns_name, link.name) in planned_keys or (ns_name, link.name) in peer_ends:
                continue
            out.append(Drift("extra", Link(netns=ns_name, name=link.name, mtu=link.mtu, mac=link.mac or ""),
                             link.kind or "link"))
        for item in (*ns.addresses, *ns.routes, *ns.neighbours, *ns.fdb):
            if item.key not in planned_keys:
                out.append(Drift("extra", item))
    return out


def _nat_diff(r: NatRules) -> list[Drift]:
    from netlab.realize import netfilter

    live = tuple(netfilter.observe_rules(r.netns, r.table, r.chains))
    if live == tuple(r.rules):
        return []
    missing = [x for x in r.rules if x not in live]
    extra = [x for x in live if x not in r.rules]
    detail = "; ".join([f"missing rule: {x}" for x in missing[:5]] + [f"extra rule: {x}" for x in extra[:5]])
    return [Drift("different", r, detail or "rule order differs")]
