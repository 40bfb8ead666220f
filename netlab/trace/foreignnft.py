"""An nftables table the lab does not plan that dropped the packet where it vanished: named, with its fix.

Every nf_tables base chain of a namespace sees the packet at its hook, in
priority order, whatever table holds it: a table someone made by hand (``nft
add table inet x``, a host firewall, another tool) beside iptables-nft's
tables and kube-proxy's drops a packet there although every rule of the lab
lets it by. ``status`` calls such a table extra ("an nftables table the lab does
not plan", realize/diff.py diff_nft), and ``up`` deletes it; iptables counters
and ``inspect``'s kube-proxy section do not show it.

Where the packet vanished in a namespace (a node forwarding it, its
destination taking it in, its source sending it), the namespace's ruleset
(``nft -j list ruleset``) is read, and each foreign table's base chains at the
hooks the packet crossed there are followed rule by rule (jumps and gotos into
the table's other chains too) against the packet's header: the first rule
whose matches all hold and whose verdict is drop or reject dropped it; a base
chain whose policy is drop dropped what no rule of it accepted. ICMP's type
and code are read (an echo request, its reply, a destination unreachable);
IPv6's headers never match the IPv4 packet. A rule with a match trace does not
read (ct state, marks, sets by name) is taken as matching when its counter
counted packets, and as not matching when it has a counter that counted none;
one without a counter that would drop the packet is named as one that may drop
it, when no rule surely does (rather than saying nothing).

kube-proxy's own table is the lab's, but for one thing: a base chain of it
whose policy is drop (kube-proxy gives them none, so accept) drops everything
that crosses its hook, its rules accepting nothing; that chain is named, with
the policy put back as the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Iterable

from netlab.trace.flow import Flow

Reason = tuple[str, str | None]  # (why, fix)
IPTABLES_NFT = ("filter", "nat", "mangle", "raw", "security")  # iptables-nft's tables: the lab's iptables rules
HOOKS = {"forward": ("prerouting", "forward", "postrouting"), "input": ("prerouting", "input"),
         "output": ("output", "postrouting")}
UNKNOWN = object()  # a match trace does not judge
ICMP_TYPES = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5, "echo-request": 8,
              "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11, "parameter-problem": 12,
              "timestamp-request": 13, "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
              "address-mask-request": 17, "address-mask-reply": 18}
ICMP_CODES = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2, "port-unreachable": 3,
              "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10, "admin-prohibited": 13}


@dataclass(frozen=True)
class Packet:
    """The packet as a namespace's hooks see it: its header and the devices it came in and goes out by."""

    flow: Flow
    iif: str | None = None
    oif: str | None = None
    icmp: tuple[int, int] | None = None  # an ICMP packet's type and code (8, 0: an echo request)


@dataclass(frozen=True)
class Drop:
    family: str
    table: str
    chain: str
    hook: str
    handle: int | None  # the rule's (``chain``: the chain that holds it); None: the base chain's policy
    verdict: str  # "drop" / "reject"
    counted: bool = False  # judged by its counter (a match trace does not read)
    planned: bool = False  # a table the lab plans (kube-proxy's): only its base chain's policy can be so
    maybe: bool = False  # a rule with a match trace does not read and no counter: it may drop the packet


def foreign_drop(ruleset: dict[str, Any], place: str, packet: Packet, ours: Iterable[tuple[str, str]] = (),
                 maybe: bool = True) -> Drop | None:
    """The rule (or base chain policy) of a table that is not the lab's that drops ``packet`` at the hooks of
    ``place`` ("forward", "input", "output"); ``ours``: the (family, table) the lab plans there besides
    iptables-nft's (kube-proxy's ``ip kube-proxy``). ``maybe``: else a rule that only may drop it is not said."""
    lab = {("ip", t) for t in IPTABLES_NFT} | set(ours)
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in ruleset.get("nftables") or ():
        if "chain" in item:
            c = item["chain"]
            chains[(c.get("family"), c.get("table"), c.get("name"))] = c
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault((r.get("family"), r.get("table"), r.get("chain")), []).append(r)
    hooks = HOOKS[place]
    # kube-proxy's base chains too, where one's policy is drop: kube-proxy gives them none (accept) and its rules
    # accept nothing, so what passes such a chain is dropped (status: "policy of chain ... is drop").
    mine = {(f, t) for f, t in ours} - {("ip", t) for t in IPTABLES_NFT}
    base = sorted((c for key, c in chains.items() if key[0] in ("ip", "inet") and c.get("hook") in hooks
                   and ((key[0], key[1]) not in lab or (key[0], key[1]) in mine and c.get("policy") == "drop")),
                  key=lambda c: (hooks.index(c["hook"]), int(c.get("prio") or 0)))
    uncertain_drops: list[Drop] = []  # rules that may drop it (a match trace does not read, no counter)
    for c in base:
        fam, table, name = c["family"], c["table"], c["name"]
        if (fam, table) in mine:
            return Drop(fam, table, name, c["hook"], None, "drop", planned=True)
        uncertain: list[Verdict] = []
        got = _run_chain(rules, fam, table, name, packet, 0, uncertain)
        uncertain_drops += [Drop(fam, table, u[3], c["hook"], u[1], u[0], maybe=True) for u in uncertain[:1]]
        if got is not None and got[0] in ("drop", "reject"):
            return Drop(fam, table, got[3], c["hook"], got[1], got[0], got[2])
        if got is None and c.get("policy") == "drop":
            return Drop(fam, table, name, c["hook"], None, "drop")
    return uncertain_drops[0] if uncertain_drops and maybe else None


Verdict = tuple[str, "int | None", bool, str]  # (verdict, the rule's handle, judged by its counter, its chain)


def _run_chain(rules: dict[tuple[str, str, str], list[dict[str, Any]]], fam: str, table: str, chain: str,
               packet: Packet, depth: int, uncertain: list[Verdict]) -> Verdict | None:
    """The verdict the chain gives the packet; None: it falls through (or returns). A rule that may match (a match
    trace does not read, no counter to tell) and would drop the packet is added to ``uncertain``, and the packet
    goes on as if it did not match."""
    if depth > 16:
        return None
    for r in rules.get((fam, table, chain), ()):
        exprs = r.get("expr") or []
        hold = [_holds(e["match"], packet) for e in exprs if isinstance(e, dict) and "match" in e]
        if False in hold:
            continue
        counted = UNKNOWN in hold
        counters = [int((e.get("counter") or {}).get("packets") or 0) for e in exprs
                    if isinstance(e, dict) and "counter" in e]
        if counted and counters and not any(counters):
            continue  # it may match; its counter says nothing did
        if counted and not counters:  # nothing tells: what it would do, noted, and on as if it did not match
            got = _verdict(rules, fam, table, chain, r, packet, depth, uncertain)
            if got is not None and got[0] in ("drop", "reject"):
                uncertain.append(got)
            continue
        got = _verdict(rules, fam, table, chain, r, packet, depth, uncertain, counted)
        if got is not None:
            return None if got[0] == "return" else got
    return None


def _verdict(rules: dict[tuple[str, str, str], list[dict[str, Any]]], fam: str, table: str, chain: str,
             r: dict[str, Any], packet: Packet, depth: int, uncertain: list[Verdict],
             counted: bool = False) -> Verdict | None:
    """The verdict of rule ``r`` of ``chain`` for a packet it matches ("return": back to the calling chain);
    None: it goes on to the next rule."""
    for e in r.get("expr") or []:
        if not isinstance(e, dict):
            continue
        if "drop" in e or "reject" in e:
            return ("drop" if "drop" in e else "reject", r.get("handle"), counted, chain)
        if "accept" in e:
            return ("accept", r.get("handle"), counted, chain)
        if "return" in e:
            return ("return", None, counted, chain)
        for kind in ("jump", "goto"):
            if kind in e:
                got = _run_chain(rules, fam, table, str((e[kind] or {}).get("target")), packet, depth + 1, uncertain)
                if got is not None:
                    return got
                if kind == "goto":
                    return ("return", None, counted, chain)
    return None


def _holds(m: dict[str, Any], packet: Packet) -> Any:
    """Whether one match holds for the packet: True, False, or UNKNOWN."""
    value = _field(m.get("left"), packet)
    if value is UNKNOWN:
        return UNKNOWN
    if value is None:  # no such header in the packet: nft's hidden protocol check fails first, negated or not
        return False
    op, right = m.get("op", "=="), m.get("right")
    payload = (m.get("left") or {}).get("payload") or {}
    if payload.get("protocol") == "icmp":
        right = _icmp_names(right, ICMP_TYPES if payload.get("field") == "type" else ICMP_CODES)
    hit = _within(value, right)
    if hit is UNKNOWN:
        return UNKNOWN
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return not hit
    return UNKNOWN


def _field(left: Any, packet: Packet) -> Any:
    f = packet.flow
    if not isinstance(left, dict):
        return UNKNOWN
    if "payload" in left:
        proto, name = left["payload"].get("protocol"), left["payload"].get("field")
        if proto == "ip" and name in ("saddr", "daddr"):
            return f.src if name == "saddr" else f.dst
        if proto == "ip" and name == "protocol":
            return f.proto
        if proto in ("ip6", "icmpv6"):
            return None  # IPv6's headers: not in an IPv4 packet, the match fails
        if proto == "icmp" and name in ("type", "code"):
            if f.proto != "icmp" or packet.icmp is None:
                return None if f.proto != "icmp" else UNKNOWN
            return packet.icmp[0] if name == "type" else packet.icmp[1]
        if proto in ("tcp", "udp", "th") and name in ("sport", "dport"):
            if proto != "th" and proto != f.proto:
                return None  # no such header: the match fails
            return f.sport if name == "sport" else f.dport
        return UNKNOWN
    if "meta" in left:
        key = left["meta"].get("key")
        if key == "l4proto":
            return f.proto
        if key == "nfproto":
            return "ipv4"
        if key in ("iifname", "oifname"):
            return packet.iif if key == "iifname" else packet.oif
    return UNKNOWN


def _icmp_names(right: Any, names: dict[str, int]) -> Any:
    """``right`` with nft's ICMP type (or code) names as their numbers."""
    if isinstance(right, str):
        return names.get(right, right)
    if isinstance(right, list):
        return [_icmp_names(r, names) for r in right]
    if isinstance(right, dict) and "set" in right:
        return {"set": _icmp_names(right["set"], names)}
    if isinstance(right, dict) and "range" in right:
        return {"range": _icmp_names(right["range"], names)}
    return right


def _within(value: Any, right: Any) -> Any:
    if value is None:
        return False
    if isinstance(right, dict) and "set" in right:
        hits = [_within(value, r) for r in right["set"]]
        return True if True in hits else UNKNOWN if UNKNOWN in hits else False
    if isinstance(right, list):
        return _within(value, {"set": right})
    if isinstance(right, dict) and "prefix" in right:
        try:
            return IPv4Address(value) in IPv4Network(f"{right['prefix']['addr']}/{right['prefix']['len']}")
        except ValueError:
            return UNKNOWN
    if isinstance(right, dict) and "range" in right:
        lo, hi = right["range"]
        try:
            if isinstance(value, int):
                return int(lo) <= value <= int(hi)
            return IPv4Address(lo) <= IPv4Address(value) <= IPv4Address(hi)
        except (ValueError, TypeError):
            return UNKNOWN
    if isinstance(right, (dict, list)):
        return UNKNOWN  # a named set (@x), a concatenation
    if isinstance(value, int) or isinstance(right, int):
        try:
            return int(value) == int(right)
        except (TypeError, ValueError):
            return False
    if isinstance(right, str) and right.endswith("*"):  # iifname "veth*"
        return str(value).startswith(right[:-1])
    return str(value) == str(right)


def reason(ns: str, d: Drop) -> Reason:
    """Why (in words, naming the table, chain and rule) and the fix."""
    table = f"{d.family} {d.table}"
    exec_ = f"ip netns exec {ns} nft"
    head = (f"table {table} in {ns}, an nftables table the lab does not plan (status calls it extra), "
            f"drops the packet at the {d.hook} hook")
    if d.planned:
        return (f"table {table} in {ns}, kube-proxy's, drops the packet at the {d.hook} hook: its base chain "
                f"{d.chain}'s policy is drop (kube-proxy gives it none: accept), and kube-proxy's rules accept "
                f"nothing (see it: {exec_} list chain {table} {d.chain}; `netlab up` puts it back)",
                f"{exec_} add chain {table} {d.chain} '{{ policy accept ; }}'")
    if d.handle is None:
        return (f"{head}: its base chain {d.chain}'s policy is drop, and no rule of it accepted the packet (see it: "
                f"{exec_} -a list table {table})", f"{exec_} delete table {table}")
    if d.maybe:
        return (f"table {table} in {ns}, an nftables table the lab does not plan (status calls it extra), may drop the "
                f"packet at the {d.hook} hook: chain {d.chain}, rule handle {d.handle} ({d.verdict}) has a match "
                f"trace cannot judge (ct state, a mark, a named set) and no counter to tell whether it matched (see "
                f"it: {exec_} -a list table {table}; or delete the whole table: {exec_} delete table {table}, as "
                f"`netlab up` does)", f"{exec_} delete rule {table} {d.chain} handle {d.handle}")
    judged = " (its counter counted it)" if d.counted else ""
    return (f"{head}: chain {d.chain}, rule handle {d.handle} ({d.verdict}){judged} (see it: {exec_} -a list "
            f"table {table}; or delete the whole table: {exec_} delete table {table}, as `netlab up` does)",
            f"{exec_} delete rule {table} {d.chain} handle {d.handle}")


def where(hops: list[Any], lost_at: int) -> tuple[str, str, Packet] | None:
    """Where the packet died (the namespace of row ``lost_at``), which hooks it crossed there ("forward": routed
    through, "input": taken in, "output": sent), and the packet as they saw it."""
    ns = hops[lost_at].netns
    first = lost_at
    while first > 0 and hops[first - 1].netns == ns:
        first -= 1
    rows = [h for h in hops[first:lost_at + 1] if h.direction == hops[lost_at].direction]
    seen = [h.observe for h in rows if h.observe is not None and not h.observe.encapsulated]
    if not seen:
        return None
    arrived = next((o.ifname for o in seen if o.direction == "in"), None)
    if any(h.kind == "deliver" for h in rows):
        place = "input"
    elif arrived is not None or any(h.kind == "route" and h.facts.get("iif") for h in rows):
        place = "forward"
    else:
        place = "output"
    out = hops[lost_at].device if place != "input" else None
    flow = seen[-1].flow
    icmp = None
    if flow.proto == "icmp":  # a destination unreachable; else the echo request, or its reply
        icmp = (3, flow.code or 0) if flow.quoted is not None else \
            (0, 0) if hops[lost_at].direction == "reply" else (8, 0)
    return ns, place, Packet(flow, arrived, out, icmp)


def blame(k: Any, hops: list[Any], lost_at: int, planned: dict[str, Any], maybe: bool = True) -> Reason | None:
    """The table that is not the lab's that dropped the packet lost at row ``lost_at``, read from the kernel
    (``k.nft_ruleset``; a kernel without it, as the unit tests' fakes, skips the check). ``planned``: the namespaces
    where kube-proxy's table ``ip kube-proxy`` is the lab's (LabMap.planned_nft). ``maybe``: a rule that only may
    drop it (foreign_drop) is said too."""
    read = getattr(k, "nft_ruleset", None)
    at = where(hops, lost_at) if read is not None else None
    if at is None:
        return None
    ns, place, packet = at
    ruleset = read(ns)
    if not ruleset:
        return None
    d = foreign_drop(ruleset, place, packet, [("ip", "kube-proxy")] if ns in planned else [], maybe)
    return reason(ns, d) if d is not None else None
