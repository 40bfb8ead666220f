"""iptables rules of a namespace: one ``iptables-restore --noflush`` per table, atomic.

The plan (:class:`~netlab.plan.resources.NatRules`) holds the lab's chains of
one table and their rules in ``iptables-save`` form. Applying it:

1. ``iptables-save -t TABLE`` in the namespace: what is there now.
2. Compute the difference, like kube-proxy's partial sync: chains whose rules
   already match are left alone; a chain that differs or is missing is
   declared (``:CHAIN - [0:0]`` creates it or flushes it) and written again;
   chains the lab made before and no longer wants (``previous``) are flushed
   and deleted (``-X``).
3. Jumps from built-in chains: restore syntax has no "add if missing"
   (``-A`` with ``--noflush`` duplicates, ``-D`` of an absent rule aborts the
   transaction), so, like kube-proxy's ``EnsureRule`` (``iptables -C`` then
   ``-I``), the rules already there are read in step 1 and only the needed
   ``-D``/``-I`` lines join the transaction: each built-in chain ends up with
   exactly one copy of each planned jump, in plan order, at its top, and every
   other rule in it (someone else's) untouched.
4. All of it in a single ``iptables-restore --noflush``: the kernel sees the
   whole change at once or none of it. Nothing is run when nothing differs.

"The lab's rules" in a built-in chain are the rules that jump to a chain the
lab owns; :func:`observe_rules` reports exactly those plus the lab's chains, in
the plan's canonical order, so ``status`` compares like with like. What the lab
owns in a whole table, its drift and the payload that repairs it:
netfilter_drift.py.

Backend: the lab's (realize/backend.py: the one it was made with, recorded in
its state; on Debian 12 iptables-nft by default; legacy works the same inside a
namespace). Both print the same canonical rule text, which the plan is written
in, so comparisons hold on either. Never mix the two in one namespace: rules of
the other backend are invisible to it, and it must hold nothing of the lab.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from netlab.errors import ApplyFailed
from netlab.kernel import iptables
from netlab.kernel.iptables import tools  # noqa: F401 - part of this module's interface
from netlab.kernel.threads import transaction_workers
from netlab.plan.resources import NatRules
from netlab.plan.iptables import (BUILTIN_CHAINS, builtin_end, canonical_order, chain_lines, chain_of, differing_chains,
                                  render_payload, target_of)


@dataclass
class Table:
    """One table as iptables-save prints it: chains (declaration order) and rule lines."""

    chains: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)  # built-in chains: ACCEPT or DROP

    def of(self, chain: str) -> list[str]:
        return self.rules.get(chain, [])


def parse_save(text: str, table: str) -> Table:
    """The ``*table`` section of iptables-save output."""
    out = Table()
    inside = False
    for line in text.splitlines():
        if line.startswith("*"):
            inside = line[1:].strip() == table
            continue
        if not inside or not line or line.startswith("#"):
            continue
        if line == "COMMIT":
            inside = False
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            out.chains.append(name)
            out.rules.setdefault(name, [])
            if policy != "-":
                out.policies[name] = policy
        elif line.startswith("-A "):
            out.rules.setdefault(chain_of(line), []).append(line)
    return out


def holds_rules(tab: Table) -> bool:
    """Whether any chain of the table, built-in or not, holds a rule."""
    return any(tab.rules.values())


def save_table(netns: str, table: str, backend: str | None = None) -> Table:
    try:
        return parse_save(iptables.save(netns, table, backend), table)
    except iptables.IptablesError as exc:
        raise ApplyFailed(str(exc)) from None


def lab_lines(tab: Table, chains: Iterable[str]) -> list[str]:
    """The lab's rules in a table: all rules of its chains, and built-in rules jumping into them."""
    owned = set(chains)
    out: list[str] = []
    for builtin in BUILTIN_CHAINS:
        out += [line for line in tab.of(builtin) if target_of(line) in owned]
    for chain in owned:
        out += tab.of(chain)
    return list(canonical_order(out))


def observe_rules(netns: str, table: str, chains: Sequence[str], backend: str | None = None) -> tuple[str, ...]:
    """The canonical ``-A ...`` lines of the lab's chains (and of the jumps into them)."""
    return tuple(lab_lines(save_table(netns, table, backend), chains))


def diff_rules(planned: Sequence[str], observed: Sequence[str]) -> list[str]:
    """Human lines for status: rules missing, extra, or out of order."""
    held, wanted = set(observed), set(planned)
    out = [f"missing: {line}" for line in planned if line not in held]
    out += [f"extra: {line}" for line in observed if line not in wanted]
    if not out and tuple(planned) != tuple(observed):
        out.append("rules present but in a different order or count")
    return out


@dataclass
class Change:
    """What one apply did (for benchmarks and verbose output)."""

    netns: str
    table: str
    written: list[str] = field(default_factory=list)  # chains (re)written
    deleted: list[str] = field(default_factory=list)  # chains removed
    jumps: int = 0  # -D/-I lines for built-in chains
    payload: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.payload)


def compute_change(res: NatRules, current: Table, previous: NatRules | None = None, read: bool = True) -> Change:
    """The minimal restore payload that makes ``current`` hold exactly ``res``. ``read``: ``current`` is what
    the kernel showed (not what it is trusted to hold), so a table with no rule in it is known empty."""
    want: dict[str, list[str]] = {c: [] for c in res.chains}
    jumps: dict[str, list[str]] = {}
    for line in res.rules:
        chain = chain_of(line)
        if chain in want:
            want[chain].append(line)
        elif chain in BUILTIN_CHAINS:
            jumps.setdefault(chain, []).append(line)
        else:
            raise ValueError(f"{res.netns}: rule for a chain the plan does not own: {line}")
    existing = set(current.chains)
    ch = Change(res.netns, res.table)
    ch.written = [c for c in res.chains if c not in existing or current.of(c) != want[c]]
    old = set(previous.chains) if previous is not None else set()
    ch.deleted = sorted(c for c in old - set(res.chains) if c in existing and c not in BUILTIN_CHAINS)
    mine = set(res.chains) | set(ch.deleted)

    fixes: list[str] = []
    for builtin in BUILTIN_CHAINS:
        planned = jumps.get(builtin, [])
        have = [line for line in current.of(builtin) if target_of(line) in mine]
        if have == planned:
            continue
        # Remove every copy of the lab's jumps, then put the planned ones on top, in order.
        fixes += ["-D" + line[2:] for line in have]
        fixes += ["-I" + line[2:] for line in reversed(planned)]
    ch.jumps = len(fixes)
    fixes += [f"-X {c}" for c in ch.deleted]
    if not (ch.written or ch.deleted or ch.jumps):
        return ch
    body = [line for c in ch.written for line in want[c]]
    ch.payload = render_payload(res.table, ch.written + ch.deleted, body, [], extra=fixes,
                                empty=read and not holds_rules(current))
    return ch


def trusted_table(previous: NatRules) -> Table:
    """What the kernel holds if nobody changed the lab's rules since ``previous`` was applied."""
    tab = Table()
    for line in previous.rules:
        tab.rules.setdefault(chain_of(line), []).append(line)
    tab.chains = list(previous.chains) + [c for c in tab.rules if c in BUILTIN_CHAINS]
    for chain in previous.chains:
        tab.rules.setdefault(chain, [])
    return tab


def trusted_change(res: NatRules, previous: NatRules) -> Change:
    """``compute_change(res, trusted_table(previous), previous)``, looking only at the chains that can
    differ: those whose lines differ, those that came or went, and those a built-in chain jumps to (the
    jumps are told apart by their targets). The other chains hold the same lines on both sides, so they
    are neither written nor deleted; leaving them out changes nothing else."""
    ends = builtin_end(previous.rules), builtin_end(res.rules)
    look = differing_chains(previous.rules, res.rules) | (set(previous.chains) ^ set(res.chains))
    look |= {target_of(line) or "" for line in previous.rules[:ends[0]] + res.rules[:ends[1]]}
    before, after = _only(previous, look, ends[0]), _only(res, look, ends[1])
    return compute_change(after, trusted_table(before), before, read=False)


def _only(r: NatRules, chains: set[str], lo: int) -> NatRules:
    """``r`` with only these of its chains (and every built-in chain's lines, which end at ``lo``)."""
    keep = tuple(c for c in r.chains if c in chains)
    rules = r.rules[:lo] + tuple(line for c in keep for line in chain_lines(r.rules, c, lo))
    return replace(r, chains=keep, rules=rules)


def apply_rules(res: NatRules, previous: NatRules | None = None, backend: str | None = None,
                verify: bool = True) -> Change:
    """Make the kernel hold ``res`` (one atomic restore; nothing when already so).

    ``previous`` is the resource as last applied (from the lab's state): chains
    it had and ``res`` no longer has are deleted. Without it, no chain is ever
    deleted, only rewritten: the state is what proves a chain is the lab's.

    ``verify`` (the default) compares with the whole table as iptables-save
    shows it, so any drift is repaired: what ``up`` wants. ``verify=False``
    with ``previous`` is kube-proxy's partial sync: it trusts that the kernel
    still holds ``previous`` and writes only the chains that differ from it,
    reading nothing (with iptables-nft, reading back 11,000 rules costs about
    0.3 s per node; a partial sync of one endpoint change costs ~30 ms).
    Drift is then left for ``status`` to show and the next verified apply to
    repair, as kube-proxy leaves it to its periodic full sync.
    """
    if verify or previous is None:
        ch = compute_change(res, save_table(res.netns, res.table, backend), previous)
    elif previous.rules == res.rules and previous.chains == res.chains:
        return Change(res.netns, res.table)
    else:
        ch = trusted_change(res, previous)
    if ch.changed:
        restore(res.netns, res.table, ch.payload, backend)
    return ch


def apply_many(items: Sequence[tuple[NatRules, NatRules | None]], backend: str | None = None,
               workers: int | None = None, verify: bool = True) -> list[Change]:
    """Apply several resources, one namespace per thread (iptables runs as its own process)."""
    if len(items) <= 1:
        return [apply_rules(r, p, backend, verify) for r, p in items]
    by_ns: dict[str, list[tuple[NatRules, NatRules | None]]] = {}
    for r, p in items:
        by_ns.setdefault(r.netns, []).append((r, p))
    workers = workers or transaction_workers(len(by_ns))

    def run(group: list[tuple[NatRules, NatRules | None]]) -> list[Change]:
        return [apply_rules(r, p, backend, verify) for r, p in group]

    from concurrent.futures import ThreadPoolExecutor  # here: status compares rules, it applies none

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, by_ns.values()))
    return [c for group in results for c in group]


def remove_rules(res: NatRules, backend: str | None = None) -> Change:
    """Take the lab's rules out of a namespace (jumps first, then its chains); others' rules stay."""
    return delete_chains(res.netns, res.table, res.chains, backend)


def delete_chains(netns: str, table: str, chains: Iterable[str], backend: str | None = None) -> Change:
    """Delete these chains (the lab's, as its state proves) and every built-in rule jumping
    into them, in one restore. Chains already gone are skipped."""
    current = save_table(netns, table, backend)
    existing = set(current.chains)
    gone = [c for c in chains if c in existing and c not in BUILTIN_CHAINS]
    ch = Change(netns, table, deleted=gone)
    if not gone:
        return ch
    fixes = ["-D" + line[2:] for b in BUILTIN_CHAINS for line in current.of(b) if target_of(line) in set(gone)]
    ch.jumps = len(fixes)
    ch.payload = render_payload(table, gone, [], [], extra=fixes + [f"-X {c}" for c in gone])
    restore(netns, table, ch.payload, backend)
    return ch


def restore(netns: str, table: str, payload: str, backend: str | None = None) -> None:
    """Run one ``iptables-restore --noflush`` in a namespace; one clear line on failure."""
    try:
        iptables.restore(netns, payload, noflush=True, backend=backend, label=table)
    except iptables.IptablesError as exc:
        raise ApplyFailed(str(exc)) from None
