"""The lab's iptables rules in a table as ``status`` and the repair see them: what the lab owns there (every
built-in chain's rules but the CNI plugins' jumps in its nodes, its own chains, the chains it owns by their
names), how the table differs from the plan (rules missing or extra, out of order, a plugin's jump above
netlab's policy hook, stale chains), and the one ``iptables-restore --noflush`` payload that makes the table
hold exactly the plan again.

netfilter.py reads a table (``iptables-save``) and applies the plan's chains as ``up`` does.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from netlab.plan.iptables import BUILTIN_CHAINS, canonical_order, chain_of, render_payload, target_of
from netlab.plan.resources import NatRules
from netlab.realize.netfilter import Table, holds_rules, parse_save


# --- the lab owns every built-in chain of its namespaces, but for the CNI plugins' jumps in its nodes ------

# The chains of the CNI plugins a pod's ADD runs: containernetworking's name all of theirs so (bridge's and ptp's
# ipMasq CNI-<hash>, firewall's CNI-FORWARD, portmap's CNI-HOSTPORT-DNAT/-MASQ), and hook them into the built-in
# chains with one jump each, which their CHECK looks for and their DEL takes out. Those jumps are the plugins',
# as the chains are: neither drift nor repaired away (a repair that flushes a built-in chain puts them back
# where they were: before the lab's rules or after them). Only where plugins run (NatRules.plugin_jumps: the
# nodes of a lab whose pods a CNI plugin attaches); elsewhere such a jump is someone's, and drift.
PLUGIN_PREFIX = "CNI-"


def is_plugin_jump(line: str) -> bool:
    """A rule of a built-in chain that jumps to a CNI plugin's chain."""
    target = target_of(line)
    return target is not None and target.startswith(PLUGIN_PREFIX)


def owned_lines(tab: Table, chains: Iterable[str], plugin_jumps: bool = False) -> list[str]:
    """What the lab owns in a table: every rule of every built-in chain (but, in a node where CNI plugins
    run, their jumps to their own chains), and its own chains' rules."""
    out: list[str] = []
    for builtin in BUILTIN_CHAINS:
        out += [line for line in tab.of(builtin) if not (plugin_jumps and is_plugin_jump(line))]
    for chain in chains:
        out += tab.of(chain)
    return list(canonical_order(out))


# The chains the lab owns by their names: in a lab's namespace a chain so named is the lab's, and one the plan
# does not hold is left over (from an earlier plan, or made by hand) and goes, as the component that names
# its chains so deletes it:
# - netlab's own (impairments' loss, the gateway's SNAT, the balancer's): NETLAB-*, in any table;
# - kube-proxy's (pkg/proxy/iptables): each full sync flushes and deletes the nat chains of its per-Service
#   prefixes that its new ruleset does not write (isServiceChainName; KUBE-XLB- is the name older releases
#   gave KUBE-SVL-), and run in another mode (nftables), its CleanupLeftovers deletes those and its fixed
#   chains of both tables;
# - the NetworkPolicy chains netlab's policy controller names (plan/policy.py): NETPOL-*, in the filter table.
# Any other chain is someone else's (kube-proxy's KUBE-MARK-MASQ, a user's): it stays, though a chain the lab
# made under another name and no longer plans is deleted by the Services feature, which recorded it.
LAB_PREFIX = "NETLAB-"
KUBE_PROXY_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-", "KUBE-XLB-")
POLICY_PREFIX = "NETPOL-"
OWNED_NAMES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {  # table: (prefixes, whole names)
    "nat": ((LAB_PREFIX,) + KUBE_PROXY_PREFIXES, frozenset({"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING"})),
    "filter": ((LAB_PREFIX, POLICY_PREFIX),
               frozenset({"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS"})),
}


def owned_by_name(table: str, chain: str) -> bool:
    """Whether a chain of this name in this table is the lab's wherever it is (see above)."""
    prefixes, names = OWNED_NAMES.get(table, ((LAB_PREFIX,), frozenset()))
    return chain.startswith(prefixes) or chain in names


def stale_chains(tab: Table, planned: NatRules) -> list[str]:
    """The chains the lab owns by name (:func:`owned_by_name`) that the table holds and the plan does not (a
    Service, endpoint or policy gone, an impairment cleared, the other kube-proxy mode, one made by hand).
    But for one that a chain of someone else's jumps to: deleting it would fail the lab's restore, and using it
    is theirs to decide."""
    planned_chains = set(planned.chains)
    stale = {c for c in tab.chains if c not in planned_chains and c not in BUILTIN_CHAINS
             and owned_by_name(planned.table, c)}
    if not stale:
        return []
    users = [c for c in tab.chains if c not in planned_chains and c not in BUILTIN_CHAINS and c not in stale]
    while users:  # a chain in use is kept, and so is every chain it jumps to
        used = {target_of(line) for c in users for line in tab.of(c)} & stale
        stale -= used
        users = list(used)
    return sorted(stale)


def unshown_line(table: str, rules: Sequence[str]) -> str:
    """Status's words for iptables-nft's table that holds a rule iptables cannot show (kernel/unshown.py)."""
    which = "; ".join(rules) if rules else "nft list table ip " + table + " shows it"
    return (f"table {table} holds a rule iptables cannot show ({which}): iptables-save prints "
            f"\"Table `{table}' is incompatible\" and none of its rules, so the lab's rules there cannot be "
            f"checked; up writes the table again")


def table_drift(planned: NatRules, text: str | None) -> list[str]:
    """How a table differs from the lab's: rules missing or extra, built-in policies not ACCEPT, chains the lab
    owns by name that the plan does not hold."""
    tab = parse_save(text or "", planned.table)
    out = [f"policy of {c} is {p}, want ACCEPT" for c, p in tab.policies.items() if p != "ACCEPT"]
    have = owned_lines(tab, planned.chains, planned.plugin_jumps)
    held, wanted = set(have), set(planned.rules)  # a node of 1,000 Services holds 11,000 rules: no list scans
    out += [f"missing rule: {line}" for line in planned.rules if line not in held]
    out += [f"extra rule: {line}" for line in have if line not in wanted]
    stale = stale_chains(tab, planned)
    for chain in stale:  # and what it does, which goes with it
        out += [f"extra chain: {chain}"] + [f"extra rule: {line}" for line in tab.of(chain)]
    if tuple(have) != tuple(planned.rules):  # netlab's rules among themselves, whatever else is there or not
        out += order_drift(planned.table, have, planned.rules)
    if planned.plugin_jumps:
        out += [ahead_line(planned.table, chain, i, line, hook)
                for chain in BUILTIN_CHAINS for i, line, hook in plugins_ahead(tab.of(chain))]
    return out


# netlab's policy hook (a built-in chain's jump to NETPOL-FORWARD or NETPOL-INPUT) goes first in its chain, and
# stays first: a CNI plugin's ADD may insert its own jump on top afterwards (containernetworking's firewall plugin
# inserts `-j CNI-FORWARD` at position 1 of FORWARD when it is not there yet, and its chain ACCEPTs every packet
# from a pod's address), which would let pods' packets pass before any policy judged them. A policy controller
# puts its jump back on top at each sync (kube-router's ensureTopLevelChains; Calico's default ChainInsertMode
# "insert"); netlab does at each `up` (the plugins' jump kept, right below the hook), and status calls a plugin's
# jump above the hook drift.
def is_policy_hook(line: str) -> bool:
    """A rule of a built-in chain that jumps to netlab's policy chains (plan/policy.py)."""
    return chain_of(line) in BUILTIN_CHAINS and (target_of(line) or "").startswith(POLICY_PREFIX)


def plugins_ahead(rules: Sequence[str]) -> list[tuple[int, str, str]]:
    """The CNI plugins' jumps a built-in chain (its ``rules`` as held) has above netlab's policy hook: (their
    number in the chain, the rule, the hook)."""
    hook = next((i for i, line in enumerate(rules) if is_policy_hook(line)), None)
    if hook is None:
        return []
    return [(i + 1, line, rules[hook]) for i, line in enumerate(rules[:hook]) if is_plugin_jump(line)]


def ahead_line(table: str, chain: str, number: int, line: str, hook: str) -> str:
    """Status's (and trace's) words for a CNI plugin's jump above netlab's policy hook."""
    return (f"{table} chain {chain}: rule {number} is a CNI plugin's jump, {line}, above netlab's policy hook "
            f"{hook}: what the plugin's chain accepts passes the network policies unjudged")


def order_drift(table: str, have: Sequence[str], want: Sequence[str]) -> list[str]:
    """The chains whose planned rules the table holds are not in the plan's order or count among themselves (a
    rule missing, or one no one planned, is drift of its own and left out here: one added by hand does not hide
    netlab's own moved below kube-proxy's), each named with the first rule out of place and its number in the
    chain as held (canonical order keeps each chain's rules in the order the kernel runs them)."""
    wanted, held = set(want), set(have)
    h: dict[str, list[tuple[int, str]]] = {}
    seen: Counter[str] = Counter()
    for line in have:
        chain = chain_of(line)
        seen[chain] += 1
        if line in wanted:
            h.setdefault(chain, []).append((seen[chain], line))
    w: dict[str, list[str]] = {}
    for line in want:
        if line in held:
            w.setdefault(chain_of(line), []).append(line)
    out = []
    for chain in dict.fromkeys(list(w) + list(h)):
        numbered, planned = h.get(chain, []), w.get(chain, [])
        got = [line for _, line in numbered]
        if got == planned:
            continue
        if sorted(got) != sorted(planned):
            counts = Counter(got)
            counts.subtract(planned)
            line, n = max(counts.items(), key=lambda item: abs(item[1]))
            times = Counter(got)[line]
            out.append(f"{table} chain {chain} holds {line} {times} time{'s' if times != 1 else ''}, want "
                       f"{times - n}")
            continue
        i = next(i for i, (a, b) in enumerate(zip(got, planned)) if a != b)
        out.append(f"rules of {table} chain {chain} in another order: rule {numbered[i][0]} is {got[i]}, want "
                   f"{planned[i]}")
    return out


def table_payload(planned: NatRules, text: str | None) -> str | None:
    """An ``iptables-restore --noflush`` payload that makes the table hold exactly the lab's
    rules (None when it already does). The chains the lab owns by name that the plan does not hold
    (:func:`stale_chains`) are declared (which flushes them) and deleted (``-X``), after the built-in
    chains' jumps to them are gone, as kube-proxy deletes its stale chains; other chains stay as they are."""
    tab = parse_save(text or "", planned.table)
    stale = stale_chains(tab, planned)
    want: dict[str, list[str]] = {c: [] for c in planned.chains}
    builtins: dict[str, list[str]] = {}
    for line in planned.rules:
        chain = chain_of(line)
        (want if chain in want else builtins).setdefault(chain, []).append(line)
    declare = [c for c in planned.chains if c not in tab.chains or tab.of(c) != want[c]]
    body = [line for c in declare for line in want[c]]
    fixes: list[str] = []
    for builtin in BUILTIN_CHAINS:
        if tab.policies.get(builtin, "ACCEPT") != "ACCEPT":
            fixes.append(f":{builtin} ACCEPT [0:0]")  # with --noflush: the policy only, no flush
        have, planned_here = tab.of(builtin), builtins.get(builtin, [])
        theirs = [planned.plugin_jumps and is_plugin_jump(line) for line in have]
        hooks = [line for line in planned_here if is_policy_hook(line)]  # planned first (Ruleset.jump_first)
        ahead = bool(planned.plugin_jumps and hooks and plugins_ahead(have))
        if ahead or [line for line, skip in zip(have, theirs) if not skip] != planned_here:
            # The plugins' jumps found above every rule of the lab's stay on top (a rule that is no one's, which
            # goes, does not count), but below netlab's policy hook; the others follow the lab's.
            lead = next((i for i, line in enumerate(have) if line in planned_here), len(have))
            fixes.append(f"-F {builtin}")
            fixes += hooks + [line for line, skip in zip(have[:lead], theirs) if skip]
            fixes += [line for line in planned_here if line not in hooks]
            fixes += [line for line, skip in zip(have[lead:], theirs[lead:]) if skip]
    if not declare and not fixes and not stale:
        return None
    policies = [f for f in fixes if f.startswith(":")]
    rest = [f for f in fixes if not f.startswith(":")] + [f"-X {c}" for c in stale]
    payload = render_payload(planned.table, declare + stale, body, [], extra=rest, empty=not holds_rules(tab))
    return payload.replace(f"*{planned.table}\n", f"*{planned.table}\n" + "".join(p + "\n" for p in policies), 1)


def hooked_only(text: str, hooked: set[str]) -> str:
    """iptables-save's text of an iptables-nft table as a whole-table restore that makes it again as it was: the
    built-in chains it declares whether they exist or not, only those that did (``hooked``) or hold a rule (a
    rollback made every one of them, hooked where a fresh lab has none)."""
    ruled = {chain_of(line) for line in text.splitlines() if line.startswith("-A ")}
    return "".join(line + "\n" for line in text.splitlines()
                   if not (line.startswith(":") and line[1:].split(" ")[0] in BUILTIN_CHAINS
                           and line[1:].split(" ")[0] not in hooked | ruled))
