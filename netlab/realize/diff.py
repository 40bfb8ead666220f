"""Plan versus kernel (the controller's diff): every object missing, different or extra.

Objects are compared whole: an object of the plan and the one the kernel
holds under the same identity key are the same when every attribute is equal
(a route's gateway, device, protocol, scope, type; a link's MTU, MAC,
up/down, bridge port, hairpin mode, the port's STP state and settings, a
bridge's own settings). So a hand-made
object is told from the lab's by what it is, not by a marker such as the
route protocol. A bridge's MTU, the kernel's to set as its ports come and go
(cni0's, as the bridge plugin makes it), is compared as :func:`_kernel_mtu` says.

* missing:   in the plan, not in the kernel;
* different: same key, other values (``detail`` says which);
* extra:     in one of the lab's namespaces, not in the plan. Links the
             kernel made with the namespace (``lo``, fallback tunnels) are
             not extra; nor is anything observe.py leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Collection, Iterable, Mapping

from netlab.kernel.base import flipped
from netlab.kernel.rtnl_bridge import default_of
from netlab.plan.iptables import BUILTIN_CHAINS, chain_of
from netlab.plan.resources import (Address, BaseChains, Bridge, Fdb, Link, Loopback, NatRules, NftRules, Resource,
                                   Route, Sysctl, Veth)
from netlab.plan import kernel_routes
from netlab.plan.route_attrs import metric_words
from netlab.plan.sysctls import MOVED_BY_FORWARD
from netlab.realize.backend import foreign_drift
from netlab.realize import netfilter, netfilter_drift, nftables
from netlab.realize.expect import interface_of
from netlab.realize.observe import Observed, link_kind

IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")


@dataclass(frozen=True)
class Drift:
    state: str  # missing | extra | different
    resource: Resource  # the planned one (missing/different) or the live one (extra)
    detail: str = ""
    live: Resource | None = None  # different: what the kernel holds
    backend: str = ""  # iptables: the backend whose table differs ("" the system default)
    # A table's differences, every one (``detail`` shows the first few: :func:`first_of`)
    differences: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.state}: {self.resource.describe()}"
        return f"{text} ({self.detail})" if self.detail else text

    def to_json(self) -> dict:
        resource = self.resource.to_json()
        if isinstance(self.resource, NatRules):  # its kind ("nat", the plan's and the state's name) is any table's
            resource["kind"] = "iptables"
        out = {"state": self.state, "object": self.resource.describe(), "detail": self.detail,
               "differences": list(self.differences) or ([self.detail] if self.detail else []),
               "resource": resource}
        if isinstance(self.live, Address) and self.live.lifetimes:  # the seconds left as read (null: forever)
            out |= {"valid_lft_s": self.live.valid_lft, "preferred_lft_s": self.live.preferred_lft}
        return out


def describe_difference(want: Resource, have: Resource, gone: Collection[str] = ()) -> str:
    """``down, mtu 1400 (want 1450)``: the attributes that differ, in words. ``gone``: the lab's namespaces
    missing (a veth's peer there is not named as in it: ``ip netns delete`` while a process holds the namespace
    leaves the peer in it, unnamed)."""
    if type(want) is not type(have):
        return f"is a {link_kind(have)}, want a {link_kind(want)}"
    out = []
    for f in fields(want):
        a, b = getattr(have, f.name), getattr(want, f.name)
        if a == b:
            continue
        if f.name == "up":
            out.append("down" if not a else "up, want down")
        elif f.name in ("peer_name", "peer_netns") and not a:
            peer_name, peer_netns = getattr(want, "peer_name"), getattr(want, "peer_netns")
            if peer_netns in gone:
                if "its peer is not" not in " ".join(out):
                    out.append(f"its peer is not {peer_name} in {peer_netns}: namespace {peer_netns} is missing")
            elif f"peer {b}" not in " ".join(out):
                out.append(f"its peer {peer_name} in {peer_netns} is not its pair")
        elif f.name == "peer_mac" and not a:
            continue
        elif f.name == "dev" and getattr(have, "hop_quirks", ()) and getattr(want, "nexthops", ()):
            continue  # a multipath route's hops through several devices: each hop's own, below
        elif f.name == "hop_quirks":  # a multipath route's hops not as planned (equal, through the route's dev)
            out.append(f"hops {'; '.join(a)} (want each of weight 1 through {getattr(want, 'dev')})")
        elif f.name == "flags" and not isinstance(want, Link):  # a neighbour's or FDB entry's: extern_learn, sticky
            out.append(f"{' '.join(a) or 'no ' + ' '.join(b)} (want {' '.join(b) or 'none'})")
        elif f.name == "flags":  # `ip link set DEV arp off`: each flag in its words, and the plan's
            # the flag named on each side: one the plan sets (``arp off``) and the link lacks is ``arp on (want off)``
            out += [f"{w} (want {flipped(w).rsplit(' ', 1)[1]})" for w in a if w not in b] + \
                [f"{flipped(w)} (want {w.rsplit(' ', 1)[1]})" for w in b if w not in a]
        elif f.name == "srcport":  # as `ip -d link` says it
            out.append("srcport {} {} (want {} {})".format(*a, *b))
        elif f.name in ("settings", "port_settings"):  # a bridge's or a bridge port's, each in its words
            words = setting_changes(a, b, "port" if f.name == "port_settings" else "bridge")
            out.append(f"bridge port of {getattr(want, 'master')}: {words}" if f.name == "port_settings" else words)
        elif f.name == "tos":  # as `ip -d link` says it
            out.append(f"tos {_tos(a)} (want {_tos(b)})")
        elif isinstance(want, Fdb) and f.name in ("port", "vni") and b is None:
            # the kernel says an entry's port and VNI only where they are not its device's own
            out.append(f"{f.name} {a} (want {want.dev}'s own)")
        elif isinstance(want, Fdb) and f.name == "state":
            kept = "extern_learn" in getattr(have, "flags", ())  # never aged (kernel/rtnl_neigh)
            ages = f": the kernel forgets it after {want.dev}'s ageing time" if a == "dynamic" and not kept else ""
            out.append(f"state {a} (want {b}){ages}")
        elif f.name == "noprefixroute":  # an address's: ip addr's word
            out.append("noprefixroute: the kernel makes no connected route for it (want one)" if a else
                       "no noprefixroute (want it)")
        elif f.name in ("valid_lft", "preferred_lft"):  # an address's, as ip addr says them
            # Not the seconds left, which count down: two statuses would differ (the JSON's details have them)
            out.append(f"{f.name} {'forever' if a is None else 'finite'} (want {'forever' if b is None else b})"
                       + (": the kernel deletes it when it runs out" if f.name == "valid_lft" and a is not None
                          else ""))
        elif f.name == "metrics":  # as ip route prints them
            out.append(f"{' '.join(metric_words(a)) or 'no metrics'} (want {' '.join(metric_words(b)) or 'none'})")
        elif f.name == "port_state":  # only a port of its planned bridge, both up (observe.py): the state itself
            master, peer = getattr(want, "master"), f"{getattr(want, 'peer_name')} in {getattr(want, 'peer_netns')}"
            out.append(f"bridge port of {master} in state {_show(a)}, want {b}: {master} forwards nothing to or "
                       f"from {peer}")
        else:
            out.append(f"{f.name} {_show(a)} (want {_show(b)})")
    return ", ".join(out)


def setting_changes(have: tuple[str, ...], want: tuple[str, ...], table: str) -> str:
    """``bcast_flood off (want on), cost 7 (want 2)``: the settings (kernel/rtnl_bridge's words, each away from the
    kernel's default) that differ, with the plan's value."""
    a, b = dict(w.split(" ", 1) for w in have), dict(w.split(" ", 1) for w in want)
    names = list(a) + [n for n in b if n not in a]
    return ", ".join(f"{n} {a.get(n, default_of(n, table))} (want {b.get(n, default_of(n, table))})"
                     for n in names if a.get(n) != b.get(n))


def _tos(value: int) -> str:
    return "inherit" if value == 1 else f"{value:#x}" if value else "0"


def _show(value: object) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):  # a multipath route's next hops
        return ", ".join(map(str, value)) if value else "none"
    return str(value)


def diff_netns(expected: Iterable[Resource], obs: Observed, kernel_links: Iterable[str] = (),
               gone: Collection[str] = ()) -> list[Drift]:
    """Drift in one namespace: ``expected`` (expect.py) against what the kernel holds; ``gone``: the lab's
    namespaces that are missing (describe_difference)."""
    out: list[Drift] = []
    want = list(expected)
    keys = {r.key for r in want}
    present_links = {r.name for r in obs.objects.values() if isinstance(r, Link)}
    # Writing ip_forward writes every interface's forwarding, and all.accept_redirects (its opposite: devinet.c,
    # inet_forward_change), which the plan has as the kernel's of its ip_forward where it holds it (a host that
    # changed it, plan/sysctls.py): when ip_forward is wrong, that is the one drift, and writing it back mends all.
    forward_wrong = any(r.name == "net.ipv4.ip_forward" and obs.sysctls.get(r.name) != r.value
                        for r in want if isinstance(r, Sysctl))
    for r in want:
        if isinstance(r, Sysctl):
            dev = interface_of(r)
            if dev is not None and dev not in present_links:
                continue  # its link is missing: that is the drift, and the new link inherits the defaults
            if forward_wrong and (dev is not None and r.name.endswith(".forwarding") or r.name in MOVED_BY_FORWARD):
                continue
            value = obs.sysctls.get(r.name)
            if value != r.value:
                out.append(Drift("different", r, f"is {value if value is not None else 'absent'}, want {r.value}",
                                 live=Sysctl(netns=r.netns, name=r.name, value=value or "")))
            continue
        if isinstance(r, (NatRules, NftRules)):
            continue
        have = obs.objects.get(r.key)
        if have is None:
            out.append(Drift("missing", r))
        elif isinstance(r, Bridge) and isinstance(have, Bridge) and have.mtu != r.mtu and \
                _kernel_mtu(r, have, want, obs):  # the kernel's to set: what else differs, repaired without it
            if (kept := replace(have, mtu=r.mtu)) != r:
                out.append(Drift("different", r, describe_difference(r, kept, gone), live=kept))
        elif have != r:
            out.append(Drift("different", r, describe_difference(r, have, gone), live=have))
    out += diff_connected(want, obs)
    out += diff_local(want, obs)
    skip = set(kernel_links) | {"lo"}
    for key, have in obs.objects.items():
        if key in keys or (isinstance(have, Link) and have.name in skip):
            continue
        out.append(Drift("extra", have, link_kind(have) if isinstance(have, Link) else _kept_words(have)))
    out += diff_tables(obs, [r for r in want if isinstance(r, NatRules)])
    out += diff_base_chains(obs, [r for r in want if isinstance(r, NatRules)])
    plugins = any(r.plugin_jumps for r in want if isinstance(r, NatRules))
    out += diff_nft(obs, [r for r in want if isinstance(r, NftRules)], plugins)
    return out


def _kept_words(have: Resource) -> str:
    """An extra neighbour's or FDB entry's words where they say more than its name: what a proxy entry makes the
    node do, why the kernel keeps an extern_learn one."""
    kept = getattr(have, "kept_words", None)
    return kept() if callable(kept) else ""


def _routed(addresses: Iterable[Resource], obs: Observed) -> list[Address]:
    """Those of ``addresses`` the kernel makes a connected route for (fib_add_ifaddr): there as they are (one there
    otherwise, another metric, is the drift), no noprefixroute nor secondary, prefix under /32, not on ``lo`` (its
    route is the local table's), their link up (down, the kernel took it away and makes it again as the link comes
    up: the link is the drift)."""
    links = {r.name: r for r in obs.objects.values() if isinstance(r, Link)}
    out = []
    for a in addresses:
        link = links.get(a.dev) if isinstance(a, Address) else None
        if not isinstance(a, Address) or link is None or obs.objects.get(a.key) != a or a.key in obs.no_route or \
                not kernel_routes.makes_connected(a, link.up, isinstance(link, Loopback)):
            continue  # no_route: its flags as the kernel read them (secondary, noprefixroute)
        out.append(a)
    return out


def connected_routes(want: Iterable[Resource], obs: Observed) -> list[Route]:
    """The route the kernel makes for each of the lab's addresses that is there as planned (:func:`_routed`)."""
    return [kernel_routes.connected_route(a) for a in _routed(want, obs)]


def diff_connected(want: Iterable[Resource], obs: Observed) -> list[Drift]:
    """The lab's addresses' connected routes (:func:`connected_routes`) against the kernel's (observe.py keeps them
    apart, each device's its own): one missing (``ip route del 10.244.0.0/24``) or different (``... proto kernel ...
    mtu 1000``: what the pods may send through it) is drift. The kernel's others are those of addresses that are not
    the lab's (the addresses are the drift) or the lab's there otherwise (another metric: the address is the drift);
    one that no address there makes (``ip route add 10.244.0.0/24 dev eth1 proto kernel``) is extra, not the lab's
    route through another device."""
    # of every address there, as it is
    explained = map(kernel_routes.connected_route, _routed(obs.objects.values(), obs))
    return _kernel_routes_drift(connected_routes(want, obs), explained, obs.connected)


def _kernel_routes_drift(mine: list[Route], explained: Iterable[Route], kernel: dict[tuple, Route]) -> list[Drift]:
    """The routes the kernel makes for the lab's addresses (``mine``) against the kernel's (``kernel``, by key and
    device): one missing or different is drift; one that neither ``mine`` nor ``explained`` (what the addresses
    there make, as they are) accounts for is extra."""
    out = []
    for r in mine:
        have = kernel.get((r.key, r.dev))
        if have is None:
            out.append(Drift("missing", r))
        elif have != r:
            out.append(Drift("different", r, describe_difference(r, have), live=have))
    made = {(r.key, r.dev) for r in (*mine, *explained)}
    return out + [Drift("extra", have) for at, have in kernel.items() if at not in made]


def local_routes(want: Iterable[Resource], obs: Observed, planned: bool = True) -> list[Route]:
    """The local table's routes the kernel makes for each of the lab's addresses there as planned, on its link
    (``planned``; else for every address there, as it is, with what older kernels make too: what explains the
    kernel's others)."""
    links = {r.name: r for r in obs.objects.values() if isinstance(r, Link)}
    return [route for a in want if isinstance(a, Address) and a.dev in links and (
        not planned or obs.objects.get(a.key) == a and a.key not in obs.secondary)
            for route in kernel_routes.local_routes(a, links[a.dev].up, isinstance(links[a.dev], Loopback),
                                                    a.key in obs.secondary, older=not planned)]


def diff_local(want: Iterable[Resource], obs: Observed) -> list[Drift]:
    """The local table's routes of the lab's addresses (:func:`local_routes`) against the kernel's (proto kernel,
    table local: observe.py keeps them apart). One missing (``ip route del local 192.168.122.2 dev eth0 table
    local``: the node drops what comes to its own address) or different is drift, up puts it back as the kernel
    made it; one no address there explains (``ip route add local 10.244.1.0/24 dev lo table local proto kernel``:
    the node swallows another node's pods) is extra, which up deletes. The kernel's own for ``lo``'s 127.0.0.1
    are explained by that address."""
    return _kernel_routes_drift(local_routes(want, obs), local_routes(obs.objects.values(), obs, planned=False),
                                obs.local)


ETH_DATA_LEN = 1500


def _kernel_mtu(want: Bridge, have: Bridge, planned: list[Resource], obs: Observed) -> bool:
    """A bridge's MTU that the kernel gives it as its ports come and go (br_mtu_auto_adjust, for a bridge whose
    MTU was not set after it was made, as the bridge plugin makes cni0): its ports' smallest, ETH_DATA_LEN
    without one. Its MTU is no drift when it is that of its ports now (an up that adds or takes its ports has
    the kernel set it), or when the plan gives it no port (the last pod's DEL left cni0 at 1500: a real node's;
    a port-less cni0 carries nothing)."""
    if not [x for x in planned if isinstance(x, Veth) and x.netns == want.netns and x.master == want.name]:
        return True
    ports = [x.mtu for x in obs.objects.values() if isinstance(x, Veth) and x.master == have.name]
    return have.mtu == (min(ports) if ports else ETH_DATA_LEN)


SHOWN = 6  # a table's differences said in its line of status; its JSON (``differences``) holds every one


def first_of(detail: list[str], shown: int = SHOWN) -> str:
    """A table's differences in one line: the first ``shown``, and how many more there are."""
    more = f" (and {len(detail) - shown} more)" if len(detail) > shown else ""
    return "; ".join(detail[:shown]) + more


def cut_short(details: Iterable[Mapping]) -> int:
    """How many differences the lines of status leave out (said "(and N more)"), by their JSON details."""
    return sum(max(0, len(d.get("differences") or ()) - SHOWN) for d in details)


def count_differences(lines: int, details: Iterable[Mapping]) -> int:
    """How many differences status's ``lines`` hold, by their JSON details: a table's every one, any other one."""
    return lines + sum(max(0, len(d.get("differences") or ()) - 1) for d in details)


def diff_nft(obs: Observed, planned: list[NftRules], plugins: bool = False) -> list[Drift]:
    """nf_tables tables other than iptables-nft's: the planned ones (kube-proxy's) as planned, no others. In a node
    where CNI plugins run (``plugins``), ip6tables-nft's tables are theirs: the lab plans no IPv6 rule, and portmap's
    DEL (and CHECK) runs ip6tables, which makes ``table ip6 nat`` where the ADD made nothing."""
    out: list[Drift] = []
    want = {(r.family, r.table): r for r in planned}
    for key, r in want.items():
        data = obs.nft.get(key)
        detail = nftables.drift(r, data)
        if detail:
            out.append(Drift("missing" if data is None else "different", r, first_of(detail),
                             differences=tuple(detail)))
    for (family, table) in sorted(set(obs.nft) - set(want)):
        if plugins and family == "ip6" and table in IPTABLES_TABLES:
            continue
        out.append(Drift("extra", NftRules(netns=obs.netns, family=family, table=table, payload=""),
                         "an nftables table the lab does not plan"))
    return out


def diff_tables(obs: Observed, planned: list[NatRules]) -> list[Drift]:
    """iptables: the lab owns every table of its namespaces (built-in chains, their policies) and its chains."""
    out: list[Drift] = []
    by_table = {r.table: r for r in planned}
    default = obs.tables.get("", {})
    plugins = any(r.plugin_jumps for r in planned)  # a node where CNI plugins run: in every table
    for table in IPTABLES_TABLES:
        want = by_table.get(table) or NatRules(netns=obs.netns, table=table, chains=(), payload="", rules=(),
                                               plugin_jumps=plugins)
        if table not in default and not want.rules and table not in obs.unshown:
            continue
        if table in obs.unshown:  # iptables-save printed none of it: say why, not every planned rule missing
            detail = [netfilter_drift.unshown_line(table, obs.unshown[table])]
            out.append(Drift("different", want, detail[0], differences=tuple(detail)))
            continue
        detail = netfilter_drift.table_drift(want, default.get(table))
        if detail:
            out.append(Drift("different" if table in default else "missing", want, first_of(detail),
                             differences=tuple(detail)))
    for backend, tables in obs.tables.items():
        if not backend:
            continue
        for table, text in tables.items():  # the other backend: it must hold nothing
            empty = NatRules(netns=obs.netns, table=table, chains=(), payload="", rules=(), plugin_jumps=plugins)
            detail = foreign_drift(table, text, plugins)  # every chain of it, whatever its name (realize/backend)
            if detail:
                out.append(Drift("extra", empty, f"iptables-{backend}: " + first_of(detail), backend=backend,
                                 differences=tuple(f"iptables-{backend}: {line}" for line in detail)))
    return out


def diff_base_chains(obs: Observed, planned: list[NatRules]) -> list[Drift]:
    """iptables-nft's built-in chains hooked here that no planned rule is in, empty and policy ACCEPT (what
    holds a rule or another policy is the table's drift, diff_tables): a fresh lab has none of them (its restores
    make only the chains their rules name), and each still sees every packet of its hook. One drift per
    namespace, with the tables they leave with no chain (and any such table): up deletes them in one
    transaction. Not where the default backend is legacy (the nf_tables chains are the other backend's,
    diff_tables), nor on a node where CNI plugins run (their jumps come and go with their pods)."""
    present = [t for family, t in obs.nft_tables if family == "ip" and t in IPTABLES_TABLES]
    if not present or "nft" in obs.tables or any(r.plugin_jumps for r in planned):
        return []
    wanted = {(r.table, chain_of(line)) for r in planned for line in r.rules}
    saved = {t: netfilter.parse_save(text, t) for t, text in obs.tables.get("", {}).items()}
    empty = netfilter.Table()
    extra = [(t, c) for t, c in obs.base_chains if c in BUILTIN_CHAINS and (t, c) not in wanted
             and not saved.get(t, empty).of(c) and saved.get(t, empty).policies.get(c, "ACCEPT") == "ACCEPT"]
    kept = {t for t, c in obs.base_chains if (t, c) not in extra}
    ruled = {r.table for r in planned if r.rules}
    tables = tuple(t for t in present if t not in kept and t not in ruled
                   and not [c for c in saved.get(t, empty).chains if c not in BUILTIN_CHAINS])
    if not extra and not tables:
        return []
    gone = BaseChains(netns=obs.netns, chains=tuple(extra), tables=tables)
    lines = [f"{t} {c}: hooked, empty, policy ACCEPT; the plan has no rule in it" for t, c in extra]
    lines += [f"table ip {t}: no chain left in it" for t in tables if t not in {t for t, _ in extra}]
    return [Drift("extra", gone, first_of(lines), differences=tuple(lines))]
