"""The tables of netfilter, per namespace, as ``trace`` reads them around its packet.

conntrack through one ctnetlink dump (netlab.kernel.conntrack.entries: the entries
``conntrack -L`` lists, no program run), and the nat table through
``iptables-save -c -t nat`` (netlab.kernel.iptables), parsed here: its text is
what a learner compares with. The nat table is read
twice around the packet, so each rule's counter says whether the packet (or
something else at the same time) crossed it. kube-proxy's nftables table
(``nft -j list table ip kube-proxy``) is read the same way: its affinity
sets, and the counters a user added, before the packet say whether one chose.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Collection, Mapping

from netlab.kernel import conntrack, iptables, nft
from netlab.realize import nftables as nftlisting
from netlab.trace.facts import CtEntry, NatRule, NatTable, NftTable
from netlab.trace.flow import Flow


class KernelTables:
    """The netfilter half of trace.kernel.LiveKernel: iptables and nft tables, and conntrack entries, read once
    a moment (before the packet, right after it) and cached per namespace."""

    def __init__(self) -> None:
        self._ct: dict[tuple[str, str], list[CtEntry]] = {}
        self._nat: dict[str, NatTable | None] = {}
        self._nat_before: dict[str, NatTable | None] = {}
        self._filter: dict[str, NatTable | None] = {}
        self._filter_before: dict[str, NatTable | None] = {}
        # namespace -> its filter table as read right after the packet (run.py, with counters): not read again
        self.filters_after: dict[str, str] = {}
        self.filters_before: dict[str, str] = {}  # and before it (extrarules: the counters of rules it ran)
        self._nft: dict[str, NftTable | None] = {}
        self._nft_before: dict[str, NftTable | None] = {}
        # namespace -> why kube-proxy's table could not be read there (nft's one line): its nft_table is None
        self.nft_unreadable: dict[str, str] = {}

    def filter_policy(self, netns: str, chain: str) -> str | None:
        """The policy of a built-in chain of the filter table (``iptables -S CHAIN``'s ``-P`` line): from the table
        read right after the packet (``filters_after``), else read now."""
        text = self.filter_text(netns)
        if text is None:
            return None
        return next((line.split()[1] for line in text.splitlines() if line.startswith(f":{chain} ")), None)

    def filter_text(self, netns: str) -> str | None:
        """The filter table's ``iptables-save`` text: the one read right after the packet, else read now (None: not
        readable)."""
        text = self.filters_after.get(netns)
        try:
            return iptables.save(netns, "filter") if text is None else text
        except Exception:  # no iptables, or the namespace is gone: nothing to say
            return None

    def nft_ruleset(self, netns: str) -> dict[str, Any] | None:
        """``nft -j list ruleset`` in ``netns``: every nf_tables table, chain and rule (None: not readable)."""
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

    def count_nat_before(self, namespaces: list[str], filters: Mapping[str, str] | None = None,
                         nft: Collection[str] = ()) -> None:
        """Read the nat tables' counters now (before the packet): :meth:`nat_table` then has each rule's delta;
        the filter tables' too (kube-proxy's REJECT of a Service without endpoints), from ``filters`` when given
        (netns -> ``iptables-save -c -t filter``, read once for the policies' counters too; a namespace left out
        could not be read). kube-proxy's nftables table too, in the namespaces ``nft`` (nftables mode: an
        iptables-mode node has none to read): its affinity sets, and the counters a user added, before the
        packet say whether one chose."""
        for ns in namespaces:
            self._nat_before[ns] = read_nat_table(ns)
            self._filter_before[ns] = _filter_of(ns, filters)
            if ns in nft:
                self._nft_before[ns] = self._read_nft(ns)

    def count_masquerades_before(self, namespaces: list[str]) -> None:
        """Read the nat tables' counters now (before the packet) where :meth:`count_nat_before` did not: the
        MASQUERADE rule of Flannel's or of the gateway's whose counter then moves is the one that masqueraded it."""
        for ns in namespaces:
            if ns not in self._nat_before:
                self._nat_before[ns] = read_nat_table(ns)

    def snapshot_nat(self, namespaces: list[str], filters: Mapping[str, str] | None = None,
                     nft: Collection[str] = ()) -> None:
        """Read the nat tables now (right after the packet); the filter tables from ``filters`` when given;
        kube-proxy's nftables table in the namespaces ``nft``."""
        for ns in namespaces:
            self._nat[ns] = read_nat_table(ns, self._nat_before.get(ns))
            self._filter[ns] = _filter_of(ns, filters, self._filter_before.get(ns))
            if ns in nft:
                self._nft[ns] = self._read_nft(ns, self._nft_before.get(ns))

    def nft_table(self, netns: str) -> NftTable | None:
        if netns not in self._nft:
            self._nft[netns] = self._read_nft(netns, self._nft_before.get(netns))
        return self._nft[netns]

    def nft_problem(self, netns: str) -> str | None:
        """Why kube-proxy's table could not be read in ``netns`` (nft's one line), when :meth:`nft_table` is None
        for that; None when it was read (or is not there)."""
        return self.nft_unreadable.get(netns)

    def _read_nft(self, netns: str, before: NftTable | None = None) -> NftTable | None:
        table, why = read_nft(netns, before)
        if why is not None:
            self.nft_unreadable[netns] = why
        else:  # read now (a read before the packet may have failed): what trace says of it is the kernel's
            self.nft_unreadable.pop(netns, None)
        return table



def _filter_of(netns: str, filters: Mapping[str, str] | None, before: NatTable | None = None) -> NatTable | None:
    """The namespace's filter table: parsed from ``filters`` (texts already read), else read now."""
    if filters is None:
        return read_nat_table(netns, before, "filter")
    text = filters.get(netns)
    return parse_nat_table(text, before) if text is not None else None


def read_nft(netns: str, before: NftTable | None = None) -> tuple[NftTable | None, str | None]:
    """kube-proxy's table (nftables mode) in the plan's words, an empty one that does not exist when the kernel has
    no such table; or None and why it could not be read, in one line (nft failed, printed no JSON, or the namespace
    could not be entered)."""
    try:
        data = nft.list_table(netns, "ip", "kube-proxy")
    except (nft.NftError, OSError) as exc:
        return None, unreadable_words(netns, exc)
    if data is None:
        return NftTable(frozenset(), {}, {}, exists=False), None
    return nft_table_of(data, before), None


def unreadable_words(netns: str, exc: Exception) -> str:
    """An error of reading kube-proxy's table in one line, without the namespace nft's errors begin with."""
    if isinstance(exc, OSError):
        return f"nft -j list table ip kube-proxy: {exc.strerror or exc}"
    return (str(exc).splitlines() or [""])[0].removeprefix(f"{netns}: ") or type(exc).__name__


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
    """The entries of protocol ``proto`` in ``netns``, read over ctnetlink (what ``conntrack -L -p PROTO`` lists)."""
    return [ct_entry(r.proto, dict(r.orig), dict(r.reply), r.state, r.flags)
            for r in conntrack.entries(netns, proto) if r.proto in ("tcp", "udp", "icmp")]


def parse_conntrack(line: str) -> CtEntry | None:
    """One line of ``conntrack -L`` (a learner's, a test's): the original tuple, then the reply tuple."""
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
