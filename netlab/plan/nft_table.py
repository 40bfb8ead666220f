"""nftables objects as netlab writes them in one ``nft -f`` transaction, and as the kernel lists them back.

kube-proxy's nftables mode keeps everything in one table, ``ip kube-proxy``
(:mod:`netlab.plan.nftables` fills it): sets and verdict maps, chains and
their rules, elements. :meth:`Table.transaction` is the ``add`` lines that make
it; :meth:`Table.listing` the same table in the words :mod:`netlab.kernel.nft`
prints the kernel's ``nft -j list table`` in. The kernel does not give a rule
back as it was written: a one-element anonymous set is a plain value, an
interval set's elements come back merged, a prefix has its host bits cleared
and a /32 is a bare address (:func:`listed_rule`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, summarize_address_range
from typing import Iterable

FAMILY = "ip"
TABLE = "kube-proxy"


@dataclass(frozen=True)
class Chain:
    name: str
    type: str | None = None  # base chains: filter | nat
    hook: str | None = None
    priority: int | None = None
    comment: str | None = None

    def spec(self) -> str:
        if self.type:
            return f" {{ type {self.type} hook {self.hook} priority {self.priority} ; }}"
        return f' {{ comment "{self.comment}" ; }}' if self.comment else ""

    def listed(self) -> str:
        base = f" type {self.type} hook {self.hook} priority {self.priority}" if self.type else ""
        return f"chain {self.name}{base}"


@dataclass(frozen=True)
class Set:
    name: str
    type: str
    comment: str | None = None
    is_map: bool = False
    timeout: int | None = None  # seconds; a dynamic set that forgets its elements (session affinity)

    def spec(self) -> str:
        out = f"type {self.type}" + (" : verdict" if self.is_map else "") + " ;"
        if self.timeout is not None:
            out += f" flags dynamic,timeout ; timeout {self.timeout}s ;"
        if self.comment:
            out += f' comment "{self.comment}" ;'
        return f"{{ {out} }}"

    def listed(self) -> str:
        kind = "map" if self.is_map else "set"
        out = f"{kind} {self.name} type {self.type}" + (" : verdict" if self.is_map else "")
        return out + (f" timeout {self.timeout}s" if self.timeout is not None else "")


@dataclass
class Table:
    """kube-proxy's table: sets and maps, chains with their rules, elements; in the order they are added."""

    sets: dict[str, Set] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)
    elements: dict[str, list[str]] = field(default_factory=dict)
    _seen: dict[str, set[str]] = field(default_factory=dict, repr=False, compare=False)  # elements' keys, as a set

    def set(self, s: Set) -> None:
        self.sets.setdefault(s.name, s)
        self.elements.setdefault(s.name, [])

    def chain(self, c: Chain | str) -> str:
        c = Chain(c) if isinstance(c, str) else c
        self.chains.setdefault(c.name, c)
        self.rules.setdefault(c.name, [])
        return c.name

    def rule(self, chain: str, text: str) -> None:
        self.rules[chain].append(text)

    def element(self, name: str, text: str) -> None:
        seen = self._seen.setdefault(name, set())
        if text not in seen:  # ensureElem: once per key (a list's scan made 1,000 Services' table quadratic)
            seen.add(text)
            self.elements[name].append(text)

    def transaction(self) -> list[str]:
        """The ``nft -f`` lines that add it all (objects first, so that rules can name them).

        The chains whose rules hold an anonymous set (a service's ``numgen random mod N vmap { ... }``) get
        their rules first, each chain's in its order: the kernel marks such a set bound by walking the whole
        transaction so far, once per set, so the earlier the shorter (1,000 Services: ~25 ms less a node).
        The table the kernel then holds, and lists, is the same."""
        pre = f"{FAMILY} {TABLE}"
        out = [f'add table {pre} {{ comment "rules for kube-proxy" ; }}']
        out += [f"add {'map' if s.is_map else 'set'} {pre} {s.name} {s.spec()}" for s in self.sets.values()]
        out += [f"add chain {pre} {c.name}{c.spec()}" for c in self.chains.values()]
        anonymous = {chain: None for chain, rules in self.rules.items() if any(" { " in r for r in rules)}
        chains = list(anonymous) + [chain for chain in self.rules if chain not in anonymous]
        out += [f"add rule {pre} {chain} {r}" for chain in chains for r in self.rules[chain]]
        out += [f"add element {pre} {name} {{ {e} }}" for name, elems in self.elements.items() for e in elems]
        return out

    def listing(self) -> tuple[str, ...]:
        """The table in :mod:`netlab.kernel.nft`'s words, sorted: what status compares with the kernel."""
        out = [s.listed() for s in self.sets.values()]
        out += [c.listed() for c in self.chains.values()]
        out += [f"rule {chain} {i:04d} {listed_rule(r)}" for chain, rules in self.rules.items()
                for i, r in enumerate(rules)]
        out += [f"element {name} {e}" for name, elems in self.elements.items() for e in elems]
        return tuple(sorted(out))


@functools.lru_cache(maxsize=1 << 16)
def listed_rule(text: str) -> str:
    """A rule as kube-proxy writes it -> as the kernel lists it back: a one-element anonymous set
    ``{ 172.30.0.0/16 }`` is kept as the plain value, vmap elements are separated by ", ", and every prefix is
    printed as nft prints it (:func:`listed_prefix`: ``{ 203.0.113.10/32 }`` is ``203.0.113.10``). Every node's
    table holds the same rules but for a few: each text is worked out once."""
    text = text.replace(" , ", ", ")
    if " { " in text and "vmap {" not in text and "update @" not in text:
        head, _, rest = text.partition(" { ")
        inner, _, tail = rest.partition(" }")
        if "," not in inner:
            text = f"{head} {inner}{tail}"
        else:  # loadBalancerSourceRanges' set: an interval set, which the kernel lists back merged
            nets = (IPv4Network(e, strict=False) for e in inner.split(", "))
            text = f"{head} {{ {', '.join(listed_intervals(nets))} }}{tail}"
    parts = text.split('"')  # not inside a comment's quotes
    parts[::2] = [_PREFIX.sub(lambda m: listed_prefix(m.group(0)), p) for p in parts[::2]]
    return '"'.join(parts)


_PREFIX = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}(?![\w.])")


def listed_prefix(text: str) -> str:
    """An address prefix as nft lists it back: its host bits cleared (``203.0.113.7/24`` is ``203.0.113.0/24``),
    a /32 the bare address (nft makes it a plain comparison)."""
    net = IPv4Network(text, strict=False)
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def listed_intervals(nets: Iterable[IPv4Network]) -> list[str]:
    """An anonymous interval set's elements as nft lists them back: sorted, overlapping and adjacent ones merged
    into one span, each span a prefix where it is one (a /32 an address), else ``first-last`` (10.0.0.128/25 and
    10.0.1.0/25 are ``10.0.0.128-10.0.1.127``)."""
    spans: list[list[int]] = []
    for lo, hi in sorted((int(n.network_address), int(n.broadcast_address)) for n in nets):
        if spans and lo <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    out = []
    for lo, hi in spans:
        first, last = IPv4Address(lo), IPv4Address(hi)
        cidrs = list(summarize_address_range(first, last))
        out.append(str(cidrs[0]).removesuffix("/32") if len(cidrs) == 1 else f"{first}-{last}")
    return out
