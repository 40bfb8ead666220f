"""kube-proxy's table written: one ``nft -f`` transaction per node, whole or a partial sync.

Applying is one transaction per node: a new node gets the plan's whole
table (``add table``, ``delete table``, then everything); a node whose table
differs gets kube-proxy's partial sync between what the kernel lists and the
plan (:func:`listing_delta`: only the chains, sets and elements that differ,
so the affinity sets of untouched Services keep their clients), or the whole
table again when a base chain or a set changed its definition.
:func:`delta_payload` is the same partial sync trusting that the last
transaction is in place, reading nothing (scripts/bench_services.py).

A chain that leaves the plan (a Service or an endpoint gone) is emptied by
the sync and deleted by a later one, in a transaction of its own, as
kube-proxy does (pkg/proxy/nftables: its ``staleChains``): before Linux 6.2
the kernel frees a chain only a moment after the map element that named it
goes, and deleting a chain costs the kernel an RCU grace period (~15 ms
here) where emptying it costs nothing. Meanwhile the empty chain is not drift
(realize/nftables.stale_chains); ``up`` deletes the ones an earlier sync left
(:func:`delete_chains_payload`) before it syncs.

The listings are netlab's words for a table, sorted (realize/nftables.py).
"""

from __future__ import annotations

import bisect
from typing import Sequence

from netlab.plan.nftables import Table


def delete_chains_payload(family: str, table: str, chains: Sequence[str]) -> str:
    """Delete chains in one transaction (``add`` first: a chain already gone is no failure; a chain that holds
    rules or is named by one is, and the transaction changes nothing)."""
    pre = f"{family} {table}"
    return "".join(f"add chain {pre} {name}\ndelete chain {pre} {name}\n" for name in chains)


def is_replay(text: str, family: str, table: str) -> bool:
    """True when ``text`` makes the whole table again (:func:`replay_payload`), not a partial sync."""
    return text.startswith(f"add table {family} {table}\ndelete table {family} {table}\n")


def replay_payload(family: str, table: str, lines: Sequence[str]) -> str:
    """A table again from its listing (what a rollback puts back): the listing is kube-proxy's own syntax.
    An expression printed as JSON (one netlab never writes) cannot be made again: nft refuses the payload."""
    pre = f"{family} {table}"
    out = [f"add table {pre}", f"delete table {pre}", f"add table {pre}"]
    sets, chains, rules, elements = [], [], [], []
    for line in lines:
        kind, name, rest = (line.split(" ", 2) + ["", ""])[:3]
        if kind in ("set", "map"):
            sets.append(_set_line(pre, name, kind, rest))
        elif kind == "chain":
            chains.append(_chain_line(pre, name, rest))
        elif kind == "rule":
            rules.append(f"add rule {pre} {name} {rest.split(' ', 1)[1]}")
        elif kind == "element":
            elements.append(f"add element {pre} {name} {{ {rest} }}")
    return "\n".join(out + sets + chains + rules + elements) + "\n"


def delete_payload(family: str, table: str) -> str:
    """Take a table away whether it is there or not (``add`` first makes ``delete`` never fail)."""
    return f"add table {family} {table}\ndelete table {family} {table}\n"


def delta_payload(old: Table, new: Table) -> str | None:
    """kube-proxy's partial sync from the last transaction (``old``, trusted to be in place) to ``new``."""
    return listing_delta("ip", "kube-proxy", old.listing(), new.listing())


def _parse(lines: Sequence[str]) -> tuple[dict, dict, dict, dict]:
    """A listing as (sets and maps: name -> (kind, spec), chains: name -> spec, rules, elements)."""
    sets: dict[str, tuple[str, str]] = {}
    chains: dict[str, str] = {}
    rules: dict[str, list[str]] = {}
    elements: dict[str, list[str]] = {}
    for line in lines:
        kind, name, rest = (line.split(" ", 2) + ["", ""])[:3]
        if kind in ("set", "map"):
            sets[name] = (kind, rest)
        elif kind == "chain":
            chains[name] = rest
            rules.setdefault(name, [])
        elif kind == "rule":
            rules.setdefault(name, []).append(rest.split(" ", 1)[1])
        elif kind == "element":
            elements.setdefault(name, []).append(rest)
    return sets, chains, rules, elements


def _chain_line(pre: str, name: str, spec: str, policy: str | None = None) -> str:
    """``add chain`` from a listed chain's spec (``type filter hook forward priority 0 [policy drop]``); with
    ``policy``, that policy said (an existing base chain takes it in place, its hook kept)."""
    spec, _, had = spec.partition(" policy ")
    policy = policy or had
    return f"add chain {pre} {name}" + (f" {{ {spec} ;" + (f" policy {policy} ;" if policy else "") + " }"
                                        if spec else "")


def _set_line(pre: str, name: str, kind: str, spec: str) -> str:
    spec, _, timeout = spec.partition(" timeout ")
    flags = f" flags dynamic,timeout ; timeout {timeout} ;" if timeout else ""
    return f"add {kind} {pre} {name} {{ {spec} ;{flags} }}"


def listing_delta(family: str, table: str, have: Sequence[str], want: Sequence[str]) -> str | None:
    """kube-proxy's partial sync, between two listings: the ``nft -f`` lines that turn ``have`` into ``want``.

    New sets and chains are added; chains whose rules differ are flushed and
    written again; elements that went or changed are deleted before the new
    ones are added; chains ``want`` no longer has are emptied last (a later
    sync deletes them: see the module's docstring), sets it no longer has are
    deleted (no rule names them by then). The elements of dynamic sets
    (session affinity: the clients seen) are not in a listing, so a set that
    stays keeps them. A base chain or a set whose definition changed cannot be
    changed in place: then the whole table is made again. None when nothing
    differs.

    Only the lines that differ are looked at (:func:`_sorted_diff`), and a
    chain written again is found in ``want`` by bisection: 1,000 Services with
    one endpoint gone, ~1 ms instead of ~25 ms to parse both listings whole.
    """
    pre = f"{family} {table}"
    went, came = _sorted_diff(have, want), _sorted_diff(want, have)
    if any(line.startswith("table ") for line in went + came):  # its flags (dormant): only a new table clears them
        return replay_payload(family, table, want)
    g_sets, g_chains, g_rules, g_elems = _parse(went)  # the lines that went
    c_sets, c_chains, c_rules, c_elems = _parse(came)  # the lines that came
    # A base chain whose policy alone changed takes the planned one in place (``policy accept`` said: the plan
    # lists none); any other definition that changed is made again with the whole table.
    policies = {n for n in set(g_chains) & set(c_chains)
                if g_chains[n].partition(" policy ")[0] == c_chains[n].partition(" policy ")[0]}
    if set(g_sets) & set(c_sets) or set(g_chains) & set(c_chains) - policies:
        return replay_payload(family, table, want)
    out = [_set_line(pre, n, kind, spec) for n, (kind, spec) in c_sets.items()]
    out += [_chain_line(pre, n, spec, None if n not in policies else spec.partition(" policy ")[2] or "accept")
            for n, spec in c_chains.items()]
    for name in sorted(set(g_rules) | set(c_rules)):
        if not _starts(want, f"chain {name}"):
            continue  # gone with its chain: emptied below
        if name in policies and not (g_rules[name] or c_rules[name]):
            continue  # its policy alone changed: its rules stay
        if _starts(have, f"chain {name}"):
            out.append(f"flush chain {pre} {name}")
        out += [f"add rule {pre} {name} {line.split(' ', 3)[3]}" for line in _block(want, f"rule {name} ")]
    for name in sorted(set(g_elems) | set(c_elems)):
        if _starts(want, f"set {name}") or _starts(want, f"map {name}"):
            out += [f"delete element {pre} {name} {{ {_key(e)} }}" for e in g_elems.get(name, [])]
        out += [f"add element {pre} {name} {{ {e} }}" for e in c_elems.get(name, [])]
    # Emptied, not deleted (a later sync deletes them); already empty: nothing to do.
    out += [f"flush chain {pre} {name}" for name in g_chains if g_rules.get(name) and name not in policies]
    out += [f"delete {kind} {pre} {n}" for n, (kind, _) in g_sets.items()]
    return "\n".join(out) + "\n" if out else None


STRETCH = 64  # lines of two listings compared at once where they are equal (one comparison in C)


def _sorted_diff(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """The lines of sorted listing ``a`` that sorted listing ``b`` lacks, in order: both walked side by
    side, the equal stretches a slice at a time."""
    out: list[str] = []
    i = j = 0
    n, m = len(a), len(b)
    while i < n and j < m:
        if a[i:i + STRETCH] == b[j:j + STRETCH]:
            i, j = i + STRETCH, j + STRETCH
        elif a[i] == b[j]:
            i, j = i + 1, j + 1
        elif a[i] < b[j]:
            out.append(a[i])
            i += 1
        else:
            j += 1
    return out + list(a[i:])


def _starts(listing: Sequence[str], line: str) -> bool:
    """The sorted listing has ``line``, alone or followed by more words (``chain X``, ``chain X type ...``)."""
    k = bisect.bisect_left(listing, line)
    return k < len(listing) and (listing[k] == line or listing[k].startswith(line + " "))


def _block(listing: Sequence[str], prefix: str) -> Sequence[str]:
    """The lines of a sorted listing that start with ``prefix`` (a kind and a name, then a space: no
    character of a name sorts below the space)."""
    k = bisect.bisect_left(listing, prefix)
    return listing[k:bisect.bisect_left(listing, prefix + "\U0010ffff", k)]


def _key(element: str) -> str:
    """An element's key: what comes before its comment or ``:`` value."""
    return element.split(" comment ", 1)[0].split(" : ", 1)[0]

