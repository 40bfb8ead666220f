"""One nft rule, as netlab lists it (realize/nftables.rule_text), judged against the packet a trace follows.

The matches trace can evaluate: ``ip saddr``/``ip daddr`` (an address, a prefix, a range, an anonymous set, or a
named set of kube-proxy's table whose elements the kernel listed), ``ip protocol``/``meta l4proto``, and the
ports of ``tcp``/``udp``/``sctp``/``th`` ``sport``/``dport`` (a port, a range, a set); each may be negated with
``!=``. A ``tcp dport`` match holds only for a TCP packet (nft adds that dependency itself). Any other match
(``ct state``, ``meta mark``, ``iifname``, ...) is one trace cannot evaluate: the rule's fate for the packet is
then unknown, and said so.

A chain's rules are walked as the kernel walks them (:func:`first_drop`): a ``jump`` to another chain comes back
after it (its ``return``, or its end), a ``goto`` does not (its ``return`` leaves the chain that went there too),
an ``accept`` ends it all, to a depth of 16 chains (nf_tables' jump stack). A rule whose matches trace cannot
evaluate may or may not send the packet on: a drop after it, or in a chain it jumps to, is one that may drop.

Pure: the rule and the sets' elements come in as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Callable, Mapping

from netlab.trace.flow import Flow

VERDICT = re.compile(r"\s*\b(drop|accept|return|continue|reject(?: with \S+ \S+)?|(?:jump|goto) \S+)$")
MATCH = re.compile(r"(?<!\S)(ip saddr|ip daddr|ip protocol|meta l4proto|(?:tcp|udp|sctp|th) (?:sport|dport)) "
                   r"(!= )?(\{ [^}]* \}|\S+)\s*")
COMMENT = re.compile(r'\s*comment "[^"]*"$')
PROTOS = {"6": "tcp", "17": "udp", "1": "icmp", "132": "sctp"}
MAX_DEPTH = 16  # NFT_JUMP_STACK_SIZE: the chains deep the kernel follows jumps and gotos


@dataclass(frozen=True)
class Judged:
    """A rule's verdict word (None: it has none, as a bare ``counter``), and whether its matches hold for the
    packet: True, False, or None when one of them is beyond trace (``unknown`` quotes it)."""

    verdict: str | None
    matches: bool | None
    unknown: str = ""

    @property
    def drops(self) -> bool:
        return self.verdict is not None and self.verdict.split()[0] in ("drop", "reject")


def judge(rule: str, f: Flow, elements: Mapping[str, tuple[str, ...]] | None = None) -> Judged:
    """Whether ``rule`` (one rule of a chain, as nft lists it) holds for ``f``, and its verdict."""
    text = COMMENT.sub("", rule).strip()
    text = " ".join(w for w in text.split() if w != "counter")  # a counter decides nothing
    m = VERDICT.search(text)
    verdict = m.group(1) if m else None
    text = text[:m.start()].strip() if m else text
    results: list[bool | None] = []
    unknown, at = [], 0
    for mm in MATCH.finditer(text):
        if text[at:mm.start()].strip():  # words between the matches trace knows: a match it cannot evaluate
            unknown.append(text[at:mm.start()].strip())
            results.append(None)
        at = mm.end()
        if _no_header(mm.group(1), f):  # nft's dependency on the protocol fails the match, negated or not
            results.append(False)
            continue
        # A value of "." is a concatenation (`ip daddr . th dport { A . 53 }`): one trace cannot evaluate
        held = None if mm.group(3) == "." else _holds(mm.group(1), mm.group(3), f, elements or {})
        results.append(None if held is None else held != bool(mm.group(2)))
        if held is None:
            unknown.append(mm.group(0).strip())
    if text[at:].strip():
        unknown.append(text[at:].strip())
        results.append(None)
    if any(r is False for r in results):
        return Judged(verdict, False)
    return Judged(verdict, None if None in results else True, ", ".join(unknown))


@dataclass(frozen=True)
class Step:
    """One rule of a walk: its chain, its place there, its text."""

    chain: str
    at: int
    rule: str


@dataclass(frozen=True)
class Drop:
    """The rule that drops (or rejects) the packet in a walk of chains, the jumps and gotos that led there from the
    first chain (``via``, the first chain's rule first), and whether it surely does: every match on the way held,
    and no rule before that trace cannot evaluate could have sent the packet elsewhere (``unknown`` quotes them)."""

    step: Step
    judged: Judged
    via: tuple[Step, ...] = ()
    sure: bool = True
    unknown: str = ""

    @property
    def first(self) -> Step:
        """The first chain's rule the drop comes from: itself, or the jump or goto that leads to it."""
        return self.via[0] if self.via else self.step


class _Walk:
    def __init__(self, rules_of: Callable[[str], tuple[str, ...] | None], f: Flow,
                 elements: Mapping[str, tuple[str, ...]], stop: Callable[[str, str], bool]):
        self.rules_of, self.f, self.elements, self.stop = rules_of, f, elements, stop
        self.unknown: list[str] = []  # what trace could not evaluate on the way: the walk is then unsure

    def doubt(self, what: str) -> None:
        if what and what not in self.unknown:
            self.unknown.append(what)

    def chain(self, chain: str, depth: int, via: tuple[Step, ...]) -> tuple[str, Drop | None]:
        """How the walk leaves ``chain``: ``drop`` (with it), ``accept``, ``return`` (back to the chain that jumped
        here: a return, the chain's end), ``stop`` (a rule ``stop`` names: whatever it decides is not ours)."""
        for i, rule in enumerate(self.rules_of(chain) or ()):
            if self.stop(chain, rule):
                return "stop", None
            judged = judge(rule, self.f, self.elements)
            if judged.matches is False or judged.verdict in (None, "continue"):
                continue
            maybe = judged.matches is None
            here = Step(chain, i, rule)
            if judged.drops:
                if maybe:
                    self.doubt(judged.unknown)
                return "drop", Drop(here, judged, via, not self.unknown, ", ".join(self.unknown))
            word, _, target = judged.verdict.partition(" ")
            if word in ("jump", "goto"):
                if depth + 1 >= MAX_DEPTH or self.rules_of(target) is None:
                    self.doubt(f"{judged.verdict} (a chain trace cannot follow)")
                    return "drop", Drop(here, judged, via, False, ", ".join(self.unknown))
                own = maybe and judged.unknown not in self.unknown  # the packet may not go there at all
                if own:
                    self.unknown.append(judged.unknown)
                how, drop = self.chain(target, depth + 1, via + (here,))
                if how in ("drop", "stop"):
                    return how, drop
                if how == "return" and word == "jump":  # back here, as it would be had it not gone
                    if own:
                        self.unknown.remove(judged.unknown)
                    continue
                word = how if how == "accept" else "return"  # a goto's chain returns for this one
            if word in ("accept", "return"):
                if not maybe:
                    return word, None
                self.doubt(judged.unknown)  # it may leave here: what comes after may not see the packet
        return "return", None


def first_drop(chain: str, rules_of: Callable[[str], tuple[str, ...] | None], f: Flow,
               elements: Mapping[str, tuple[str, ...]] | None = None,
               stop: Callable[[str, str], bool] = lambda chain, rule: False) -> Drop | None:
    """The rule that drops or rejects ``f`` (surely, or maybe: :class:`Drop`) as the kernel walks ``chain`` and the
    chains its rules jump or go to (``rules_of``: a chain's rules, None for one the table lacks); None when the
    packet leaves the chain first (accept, return, its end) or meets a rule ``stop`` names."""
    how, drop = _Walk(rules_of, f, elements or {}, stop).chain(chain, 0, ())
    return drop if how == "drop" else None


def _items(value: str, elements: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """The values a match compares with: a set's elements (first word each: a named set's may carry a comment)."""
    if value.startswith("@"):
        held = elements.get(value[1:])
        return None if held is None else [e.split()[0] for e in held if e.split()]
    if value.startswith("{"):
        return [e.strip() for e in value.strip("{} ").split(",") if e.strip()]
    return [value]


def _holds(what: str, value: str, f: Flow, elements: Mapping[str, tuple[str, ...]]) -> bool | None:
    items = _items(value, elements)
    if items is None:
        return None
    if what in ("ip saddr", "ip daddr"):
        ip = f.src if what == "ip saddr" else f.dst
        if ip is None:
            return None
        try:
            return any(_address_in(IPv4Address(ip), e) for e in items)
        except ValueError:
            return None
    if what in ("ip protocol", "meta l4proto"):
        return f.proto in [PROTOS.get(e, e) for e in items]
    field = what.split()[1]  # a port's (judge has checked the packet has the header)
    port = f.sport if field == "sport" else f.dport
    if port is None:
        return None
    try:
        return any(_port_in(port, e) for e in items)
    except ValueError:
        return None


def _no_header(what: str, f: Flow) -> bool:
    """A port match (``tcp dport``) of a packet without that header: an ICMP error's quoted packet, ICMP, another
    protocol."""
    proto = what.split()[0]
    if proto not in ("tcp", "udp", "sctp", "th"):
        return False
    return f.quoted is not None or f.proto == "icmp" or (proto != "th" and proto != f.proto)


def _address_in(ip: IPv4Address, e: str) -> bool:
    if "-" in e:
        lo, hi = e.split("-", 1)
        return IPv4Address(lo.strip()) <= ip <= IPv4Address(hi.strip())
    return ip in IPv4Network(e, strict=False)


def _port_in(port: int, e: str) -> bool:
    if "-" in e:
        lo, hi = e.split("-", 1)
        return int(lo) <= port <= int(hi)
    return port == int(e)
