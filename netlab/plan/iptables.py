"""iptables-restore payloads: the lab's chains in one table, in two forms.

A rule is written the way the real component writes it into its
``iptables-restore`` input (kube-proxy's ``-m comment --comment "..." -m tcp
-p tcp -d 10.96.0.10 --dport 53``, probabilities ``%0.10f``, marks
``--or-mark 0x00004000``; Flannel's ``-s ... -d ... -m comment ...``), and
:func:`saved_rule` turns it into the form ``iptables-save`` prints it back in
(``-d 10.96.0.10/32 -p tcp -m comment --comment "..." -m tcp --dport 53``,
the probability re-rendered from the kernel's fixed-point value, ``--set-xmark
0x4000/0x4000``). The payload holds the first form, ``NatRules.rules`` the
second, which status compares with the kernel, so a payload a real node would
get and an exact comparison go together. ``#`` lines are notes for people,
which iptables-restore skips.

Jumps from the built-in chains (PREROUTING, OUTPUT, POSTROUTING, INPUT,
FORWARD) are listed in ``NatRules.rules`` but not written into the payload:
``iptables-restore --noflush`` has no "add if missing", ``-A`` would add the
jump again on every run and ``-D`` of an absent rule aborts the whole
transaction. So, like kube-proxy's ``EnsureRule`` (``iptables -C`` then
``-I``), :mod:`netlab.realize.netfilter` reads the table first and adds, inside
the same single restore transaction, only the ``-D``/``-I`` lines needed to
make those chains hold exactly one copy of each jump, in plan order. The
payload itself only declares (``:CHAIN - [0:0]``, which creates or flushes)
the lab's own chains and is idempotent: it can be replayed at will, and never
flushes a built-in chain or a chain someone else made.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

from netlab.model import naming
from netlab.plan.iptables_save import saved_rule
from netlab.plan.resources import NatRules

# The order iptables-save prints built-in chains in; lab chains follow, by name.
BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")


def probability(n: int) -> str:
    """1/n as iptables-save prints it (xt_statistic keeps it as a fraction of 2^31)."""
    fixed = round(0x80000000 / n)
    return f"{fixed / 0x80000000:.11f}"


def kube_probability(n: int) -> str:
    """1/n as kube-proxy writes it into its restore payload (``computeProbability``: ``%0.10f``)."""
    return f"{1.0 / n:0.10f}"


@dataclass
class Ruleset:
    """The lab's chains in one table: declarations, rules, notes for people, jumps.

    Rules are given as the component writes them (the payload keeps that form);
    ``rules()`` holds them as iptables-save prints them (:func:`saved_rule`).
    """

    table: str
    chains: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)  # "-A ..." (as written) and "# ..." lines, payload order
    jumps: list[str] = field(default_factory=list)  # "-A PREROUTING ... -j KUBE-SERVICES", as iptables-save prints
    jumps_written: list[str] = field(default_factory=list)  # the same jumps as the component writes them
    _by_chain: dict[str, list[str]] = field(default_factory=dict, repr=False)  # saved form
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    def copy(self) -> "Ruleset":
        """An independent copy (nodes share kube-proxy's rules and add their own Flannel chain)."""
        return Ruleset(self.table, list(self.chains), list(self.body), list(self.jumps), list(self.jumps_written),
                       {c: list(lines) for c, lines in self._by_chain.items()})

    def chain(self, name: str) -> str:
        if name in self._by_chain:
            return name
        naming.check_chain(name)
        if name in BUILTIN_CHAINS:
            raise ValueError(f"{name} is a built-in chain; the lab only jumps from it")
        self.chains.append(name)
        self._by_chain[name] = []
        self._cache.clear()
        return name

    def add(self, chain: str, spec: str) -> None:
        lines = self._by_chain.get(chain)
        if lines is None:
            raise ValueError(f"rule for undeclared chain {chain}")
        line = f"-A {chain} {spec}"
        self.body.append(line)
        lines.append(saved_rule(line))
        self._cache.clear()

    def jump(self, builtin: str, spec: str) -> None:
        if builtin not in BUILTIN_CHAINS:
            raise ValueError(f"{builtin} is not a built-in chain")
        self.jumps_written.append(f"-A {builtin} {spec}")
        self.jumps.append(saved_rule(f"-A {builtin} {spec}"))
        self._cache.clear()

    def jump_first(self, builtin: str, spec: str) -> None:
        """A jump that must come before every other one of its chain (network policies judge
        a packet before kube-proxy's and Flannel's chains accept it)."""
        if builtin not in BUILTIN_CHAINS:
            raise ValueError(f"{builtin} is not a built-in chain")
        self.jumps_written.insert(0, f"-A {builtin} {spec}")
        self.jumps.insert(0, saved_rule(f"-A {builtin} {spec}"))
        self._cache.clear()

    def note(self, text: str) -> None:
        self.body.append(f"# {text}")

    def rules(self) -> tuple[str, ...]:
        """Canonical order (see :func:`canonical_order`), built without sorting the rules."""
        if "rules" not in self._cache:
            out = list(canonical_order(self.jumps))
            for chain in sorted(self.chains):
                out += self._by_chain[chain]
            self._cache["rules"] = tuple(out)
        return self._cache["rules"]  # type: ignore[return-value]

    def payload(self, title: str) -> str:
        key = "payload:" + title
        if key not in self._cache:
            self._cache[key] = render_payload(self.table, sorted(self.chains), self.body, self.jumps_written, title)
        return self._cache[key]  # type: ignore[return-value]

    def resource(self, netns: str, title: str) -> NatRules:
        """The NatRules of one namespace; nodes with the same rules share the strings."""
        return NatRules(netns=netns, table=self.table, chains=tuple(sorted(self.chains)),
                        payload=self.payload(title), rules=self.rules())


def chain_of(line: str) -> str:
    """``-A KUBE-SERVICES ...`` -> ``KUBE-SERVICES``."""
    return line.split(None, 2)[1]


def target_of(line: str) -> str | None:
    """The chain or target a rule jumps to (``-j X``), or None."""
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if word in ("-j", "-g"):
            return words[i + 1]
    return None


def canonical_order(lines: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Sort rule lines the way status compares them: built-in chains in hook
    order, then the other chains by name; order within a chain is kept."""
    def key(item: tuple[int, str]) -> tuple:
        pos, line = item
        chain = chain_of(line)
        if chain in BUILTIN_CHAINS:
            return (0, BUILTIN_CHAINS.index(chain), "", pos)
        return (1, 0, chain, pos)

    return tuple(line for _, line in sorted(enumerate(lines), key=key))


def _rank(chain: str) -> tuple:
    """A chain's place in :func:`canonical_order`."""
    return (0, BUILTIN_CHAINS.index(chain), "") if chain in BUILTIN_CHAINS else (1, 0, chain)


STRETCH = 64  # lines of two rule tuples compared at once where they are equal (one comparison in C)


def differing_chains(old: Sequence[str], new: Sequence[str]) -> set[str]:
    """The chains whose rule lines differ between two rule tuples in canonical order.

    kube-proxy's partial sync knows which Services changed; netlab renders the
    whole table again, so this finds them. The tuples are walked side by side,
    the equal stretches a slice at a time; at a difference, the chain it is in
    is noted (the earlier of the two lines' chains in canonical order: the
    other side has no lines of it there) and skipped on both sides. A chain's
    rules that changed, came or went are all found this way. 11,000 rules of
    1,000 Services with one endpoint gone: ~0.5 ms, instead of ~6 ms to group
    both tuples by chain line by line.
    """
    out: set[str] = set()
    i = j = 0
    n, m = len(old), len(new)
    while i < n and j < m:
        if old[i:i + STRETCH] == new[j:j + STRETCH]:
            i, j = i + STRETCH, j + STRETCH
            continue
        while i < n and j < m and old[i] == new[j]:
            i, j = i + 1, j + 1
        if i == n or j == m:
            break
        chain = min(chain_of(old[i]), chain_of(new[j]), key=_rank)
        out.add(chain)
        while i < n and chain_of(old[i]) == chain:
            i += 1
        while j < m and chain_of(new[j]) == chain:
            j += 1
    out.update(chain_of(line) for line in old[i:])
    out.update(chain_of(line) for line in new[j:])
    return out


def builtin_end(rules: Sequence[str]) -> int:
    """Where the built-in chains' lines (the jumps, first in canonical order) end."""
    i = 0
    while i < len(rules) and chain_of(rules[i]) in BUILTIN_CHAINS:
        i += 1
    return i


def chain_lines(rules: Sequence[str], chain: str, lo: int) -> Sequence[str]:
    """The lines of one of the lab's chains in a canonical rule tuple whose built-in chains' lines end at
    ``lo``, found by bisection: past ``lo`` the lines sort by their ``-A CHAIN `` prefix (chains come by
    name, and no character of a chain's name sorts below the space after it, nor below "!")."""
    start = bisect.bisect_left(rules, f"-A {chain} ", lo)
    return rules[start:bisect.bisect_left(rules, f"-A {chain}!", start)]


# iptables-nft (1.8.x) keeps the name of every chain a restore's commands name in a sorted linked list,
# each name inserted by walking it from the start, and then asks the kernel for each of those chains
# with a request of its own: for kube-proxy's thousands of chains both are slow (a new node's nat table
# of 4,020 chains and 11,000 rules: 0.38 s, 0.22 s of it in that list). A command that names no chain
# makes it read all the table's chains in one dump and keep no list. ``-Z`` (zero the counters) is such
# a command; in a table that holds no rule yet it zeroes only the built-in chains' policy counters
# (iptables-legacy keeps no such list, and zeroes the same). So a payload that declares many chains into
# a table with no rule starts with it.
ZERO_FIRST_CHAINS = 64
ZERO_FIRST = ("# no chain named: iptables-nft reads the table's chains in one dump (no rule to zero yet)", "-Z")


def zero_first(declare: Sequence[str], empty: bool) -> bool:
    """Whether a payload declaring these chains starts with ``-Z`` (see above): many, into an empty table."""
    return empty and len(declare) >= ZERO_FIRST_CHAINS


def render_payload(table: str, declare: list[str], body: list[str], jumps: list[str], title: str = "",
                   extra: list[str] = (), empty: bool = False) -> str:
    """An ``iptables-restore --noflush`` payload for one table.

    ``declare`` chains are created, or flushed if they exist; ``body`` holds
    their rules; ``jumps`` are shown as comments (see the module docstring);
    ``extra`` lines (``-D``/``-I``/``-X``) go before COMMIT. ``empty``: the
    table is known to hold no rule (read just before, or in a namespace made
    in this run), so a long payload may start with ``-Z`` (:func:`zero_first`).
    """
    out = [f"# {title}"] if title else []
    out.append(f"*{table}")
    if zero_first(declare, empty):
        out += ZERO_FIRST
    out += [f":{c} - [0:0]" for c in declare]
    out += body
    if jumps:
        out.append("# Jumps from built-in chains, added by netlab only when missing (kube-proxy:")
        out.append("# iptables -C, then -I), never by this payload, which --noflush would duplicate:")
        out += [f"#   {line}" for line in jumps]
    out += list(extra)
    out.append("COMMIT")
    return "\n".join(out) + "\n"
