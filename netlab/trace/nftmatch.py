"""One nft rule, as netlab lists it (realize/nftables.rule_text), judged against the packet a trace follows.

The matches trace can evaluate: ``ip saddr``/``ip daddr`` (an address, a prefix, a range, an anonymous set, or a
named set of kube-proxy's table whose elements the kernel listed), ``ip protocol``/``meta l4proto``, and the
ports of ``tcp``/``udp``/``sctp``/``th`` ``sport``/``dport`` (a port, a range, a set); each may be negated with
``!=``. A ``tcp dport`` match holds only for a TCP packet (nft adds that dependency itself). Any other match
(``ct state``, ``meta mark``, ``iifname``, ...) is one trace cannot evaluate: the rule's fate for the packet is
then unknown, and said so.

Pure: the rule and the sets' elements come in as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Mapping

from netlab.trace.flow import Flow

VERDICT = re.compile(r"\s*\b(drop|accept|return|continue|reject(?: with \S+ \S+)?|(?:jump|goto) \S+)$")
MATCH = re.compile(r"(?<!\S)(ip saddr|ip daddr|ip protocol|meta l4proto|(?:tcp|udp|sctp|th) (?:sport|dport)) "
                   r"(!= )?(\{ [^}]* \}|\S+)\s*")
COMMENT = re.compile(r'\s*comment "[^"]*"$')
PROTOS = {"6": "tcp", "17": "udp", "1": "icmp", "132": "sctp"}


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
