"""Rules iptables-nft cannot show: a table of its that holds a rule written with nft's own words.

``nft insert rule ip filter FORWARD ... numgen random mod 2 0 drop`` puts into iptables-nft's table a rule
that no iptables match or target says; ``iptables-save`` then prints only "# Table `filter' is incompatible,
use 'nft' tool." and none of the table's rules, so the lab's rules there cannot be read through iptables
(status called them all missing). :func:`incompatible_tables` finds such tables in iptables-save's output;
:func:`foreign_rules` picks, from ``nft -j list table``, the rules with an expression iptables-nft itself
never writes (numgen, a set, a hash ...), and :func:`unshown` says them as ``nft list table`` prints them.
"""

from __future__ import annotations

import re

from netlab.kernel import nft as nftmod

_INCOMPATIBLE = re.compile(r"^# Table `([^']+)' is incompatible")
# What iptables-nft writes in its rules: its matches and targets (xt), native payload/meta matches (with a mask:
# "&"; a prefix or a range on the right), counters and verdicts. Anything else is nft's own.
IPTABLES_EXPRS = frozenset({"xt", "counter", "accept", "drop", "return", "jump", "goto", "continue", "log", "reject",
                            "queue", "match"})
MATCH_LEFT = frozenset({"payload", "meta", "&"})
_RULE_SKIP = ("type ", "policy ", "}", "chain ", "table ")


def incompatible_tables(text: str) -> list[str]:
    """The tables iptables-save said it cannot show (its "# Table `filter' is incompatible" lines)."""
    return [m.group(1) for line in text.splitlines() if (m := _INCOMPATIBLE.match(line))]


def _foreign_expr(e: object) -> bool:
    if not isinstance(e, dict) or len(e) != 1:
        return True
    (kind, body), = e.items()
    if kind not in IPTABLES_EXPRS:
        return True
    if kind != "match":
        return False
    left, right = body.get("left"), body.get("right")
    if not isinstance(left, dict) or next(iter(left), None) not in MATCH_LEFT:
        return True
    return isinstance(right, dict) and next(iter(right), None) not in ("prefix", "range")


def foreign_rules(data: dict) -> list[tuple[str, int]]:
    """(chain, position in the chain from 0) of each rule of an ``nft -j list table`` answer that has an
    expression iptables-nft never writes."""
    out: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for o in data.get("nftables", []):
        rule = o.get("rule") if isinstance(o, dict) else None
        if not isinstance(rule, dict):
            continue
        chain = str(rule.get("chain"))
        n = seen[chain] = seen.get(chain, -1) + 1
        if any(_foreign_expr(e) for e in rule.get("expr", [])):
            out.append((chain, n))
    return out


def rule_lines(text: str) -> dict[str, list[str]]:
    """``nft list table``'s text -> chain -> its rules' lines, in order."""
    out: dict[str, list[str]] = {}
    chain = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("chain "):
            chain = s.split()[1].strip('"')
            out[chain] = []
        elif chain is not None and s and not s.startswith(_RULE_SKIP):
            out[chain].append(s)
    return out


def unshown(netns: str, table: str) -> tuple[str, ...]:
    """The rules of iptables-nft's ``table`` in ``netns`` that iptables cannot show, each as ``chain C: RULE``
    in nft's words; () when nft cannot tell which (or cannot read the table)."""
    try:
        data = nftmod.list_table(netns, "ip", table)
        text = nftmod.list_table_text(netns, "ip", table) if data else None
    except nftmod.NftError:
        return ()
    if not data or not text:
        return ()
    lines = rule_lines(text)
    return tuple(f"chain {chain}: {lines[chain][n]}" for chain, n in foreign_rules(data)
                 if n < len(lines.get(chain, [])))
