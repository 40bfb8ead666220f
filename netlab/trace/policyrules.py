"""The policy rules a traced packet met in a node, against the ones netlab put there: why the kernel's verdict
is not the policies'.

A node judges a new flow with a chain of jumps (plan/policy.py)::

    FORWARD (or INPUT) ─► NETPOL-FORWARD (NETPOL-INPUT) ─► NETPOL-IN-<pod> / NETPOL-OUT-<pod>
        ─► NETPOL-ING-<policy> / NETPOL-EGR-<policy> (─► NETPOL-EXC-<hash>): MARK what a rule allows
        ◄─ REJECT what no rule marked

When the packet counters of the pod chain's REJECT disagree with the policies' meaning, a rule on that path is
missing, one netlab did not write is there (an ``iptables -F`` or ``-D`` by hand, another controller), or
netlab's rules are all there but in another order (a rule deleted and appended again):

- the policies deny the flow, and the REJECT counted nothing although the packet passed the node's FORWARD hook:
  the jump to the pod's chain, or the REJECT itself, is gone (or a rule of someone's let it through first);
- the policies allow it, and the REJECT counted it: the rule that marks it allowed (``-s <peer>/32 ... -j MARK``
  in the policy's chain) is gone, or the pod chain's jump to that policy's chain;
- either, when a chain holds netlab's rules in another order: a pod chain's REJECT before a policy's jump, the
  hook's jump to the policies below kube-proxy's and Flannel's ACCEPTs.

Both lists come from comparing the node's filter table (``iptables-save -c``, read right after the packet) with
the lines ``status`` compares it with (the plan's canonical ``iptables-save`` form, the node's whole filter table),
limited to the chains on the packet's path, so ``status`` names the same lines, and the same chains "in another
order" (realize/netfilter_drift.order_drift), and ``up`` puts them back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from netlab.kernel import iptables
from netlab.model.lab import Lab
from netlab.model.netpol import Allowance, PodView, policy_set
from netlab.plan.iptables import Ruleset, chain_of, target_of
from netlab.plan.policy import FORWARD_CHAIN, INPUT_CHAIN, comment_text, node_rules, pod_chain
from netlab.realize.netfilter import parse_save
from netlab.realize.netfilter_drift import ahead_line, is_plugin_jump as plugin_jump, order_drift, plugins_ahead

_COUNTERS = re.compile(r"^\[\d+:\d+\] ")
_COUNTED = re.compile(r"^\[(\d+):\d+\] -A (NETPOL-\S+) .*-j REJECT")


def read_tables(netns_list: Iterable[str]) -> dict[str, str]:
    """netns -> its filter table as ``iptables-save -c -t filter`` prints it (a namespace that cannot be read is
    left out)."""
    out: dict[str, str] = {}
    for ns in netns_list:
        try:
            out[ns] = iptables.save(ns, "filter", counters=True)
        except iptables.IptablesError:
            continue
    return out


def reject_counts(tables: dict[str, str]) -> dict[tuple[str, str], int]:
    """(netns, chain) -> packets its REJECT rules counted, for every NETPOL chain of these tables."""
    out: dict[tuple[str, str], int] = {}
    for ns, text in tables.items():
        for line in text.splitlines():
            m = _COUNTED.match(line)
            if m:
                out[(ns, m.group(2))] = out.get((ns, m.group(2)), 0) + int(m.group(1))
    return out


@dataclass
class Drift:
    """The rules on a packet's path netlab put in a node and the kernel lacks, the ones it holds beside them, and
    the chains that hold netlab's rules in another order or count among themselves (status's lines for them)."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.order)

    def count(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.order)


def path_drift(lab: Lab, node: str, text: str, direction: str, pod: PodView, hook: str = "FORWARD",
               planned_table: Sequence[str] | None = None) -> Drift:
    """How node ``node``'s filter table (``text``, as iptables-save -c prints it) differs from netlab's on the path
    of a packet judged by ``pod``'s ``direction`` chain from ``hook`` (FORWARD; INPUT for a pod's packet to the
    node itself): that hook's jump to the policies' entry chain and what comes before it, the entry chain's rules
    that lead to the pod's chain (or let established flows pass), the pod's chain, and the chains of the policies
    it jumps to, their except chains too. In the order the packet meets them.

    ``planned_table``: the node's whole filter table as planned (kube-proxy's and Flannel's rules too), the lines
    status compares it with; then a chain on the way whose planned rules are in another order or count among
    themselves (whatever else it holds) is named as status names it (:func:`order_drift`): a pod chain whose
    REJECT comes before a policy's jump, the hook's jump to the policies moved below kube-proxy's ACCEPTs.
    Without it, the policies' rules only (no order of the hook's chain is known then)."""
    if planned_table is None:
        rs = Ruleset("filter")
        node_rules(rs, lab, lab.node(node), policy_set(lab))
        planned = rs.rules()
    else:
        planned = list(planned_table)
    known = set(planned)
    chain = pod_chain(direction, pod)
    policies = [t for line in planned if chain_of(line) == chain for t in [target_of(line)]
                if t and t.startswith("NETPOL-")]
    excepts = [t for line in planned if chain_of(line) in policies for t in [target_of(line)]
               if t and t.startswith("NETPOL-EXC-")]
    tab = parse_save("\n".join(_COUNTERS.sub("", line) for line in text.splitlines()), "filter")
    entries = (FORWARD_CHAIN if hook == "FORWARD" else INPUT_CHAIN,)
    out = Drift()
    for c in dict.fromkeys((hook, *entries, chain, *policies, *excepts)):
        want = whole = [line for line in planned if chain_of(line) == c]
        have = held_here = tab.of(c)
        if c == hook:
            # The lab's jump, and what the packet meets before it: the rest of a built-in chain is kube-proxy's and
            # Flannel's (a rule no one planned before the jump, an ACCEPT, takes the packet past the policies; the
            # CNI plugins' jumps are theirs, as status takes them). No jump: it is missing, and that is all.
            first = next((i for i, line in enumerate(have) if target_of(line) in entries), 0)
            want = [line for line in want if target_of(line) in entries]
            have = [line for i, line in enumerate(have) if i < first and line not in known and not plugin_jump(line)
                    or (target_of(line) or "").startswith("NETPOL-")]
        elif c in entries:  # the jumps to other pods' chains are not this packet's way
            want = [line for line in want if target_of(line) == chain or not _pod_chain(target_of(line))]
        held, wanted = set(have), set(want)
        missing = [line for line in want if line not in held]
        extra = [line for line in have if line not in wanted
                 and not (c in entries and _pod_chain(target_of(line)) and target_of(line) != chain)]
        out.missing += missing
        out.extra += extra
        if c != hook or planned_table is not None:
            # netlab's rules the chain holds, in the plan's order among themselves? Whatever else is there (a rule
            # added by hand, named above when on the way) or not (named missing). The CNI plugins' jumps in a
            # built-in chain are theirs, as status takes them. Status's line for the chain, when the rules on
            # this packet's way are out of order (not only other pods' jumps in the entry chain).
            held_here = [line for line in held_here if c != hook or not plugin_jump(line)]
            if c not in entries or order_drift("filter", held_here, want):
                out.order += order_drift("filter", held_here, whole)
        if c == hook and lab.cni != "builtin":  # a CNI plugin's jump above the hook: status's line, as it says it
            out.order += [ahead_line("filter", c, *ahead) for ahead in plugins_ahead(tab.of(c))]
    return out


def _pod_chain(target: str | None) -> bool:
    return bool(target) and target.startswith(("NETPOL-IN-", "NETPOL-OUT-"))  # type: ignore[union-attr]


def allowing(drift: Drift, allow: Allowance, address: str) -> Drift:
    """Of a drift, what the rule that allows a flow lacks: the missing lines of that rule and peer (those for the
    flow's other end, ``address``, when some are), and every rule netlab did not write; the drift as it is when
    none of its missing lines are that rule's."""
    peer = " ".join(allow.peer.split()[:2]) if allow.peer.startswith("peer ") else allow.peer
    what = f"{allow.policy} {allow.direction} rule {allow.rule} {peer}"
    comments = [f'--comment "{comment_text(what)}"', f'--comment "{comment_text(what + " except")}"']
    rule = [line for line in drift.missing if any(c in line for c in comments)]
    mine = [line for line in rule if f" {address}/32 " in line]
    others = [line for line in drift.missing if not _policy_rule(line)]  # a pod chain's jump, say
    missing = others + (mine or rule)
    return Drift(missing, drift.extra, drift.order) if missing else drift


def _policy_rule(line: str) -> bool:
    return chain_of(line).startswith(("NETPOL-ING-", "NETPOL-EGR-", "NETPOL-EXC-"))


def listed(lines: list[str], most: int = 2) -> str:
    """Rules as status lists them, the first ``most`` of them."""
    shown = "; ".join(lines[:most])
    return shown + (f"; and {len(lines) - most} more" if len(lines) > most else "")


def not_stopped(drift: Drift, node: str, chain: str) -> str:
    """Why a packet the policies deny passed node ``node``'s chain ``chain`` without its REJECT counting it."""
    if drift.missing:
        chains = sorted({chain_of(line) for line in drift.missing})
        where = f"chain {chains[0]}" if len(chains) == 1 else f"chains {', '.join(chains)}"
        n = len(drift.missing)
        first = next((line for line in drift.missing if chain_of(line) == chain and "-j REJECT" in line),
                     drift.missing[0])
        what = "its REJECT" if chain_of(first) == chain and "-j REJECT" in first else "this one"
        said = (f"{n} of netlab's rules are missing from node {node}'s {where} ({what} among them: {first})"
                if n > 1 else f"a rule of netlab's is missing from node {node}'s {where}: {first}")
    elif drift.extra:
        said = f"node {node}'s filter table holds rules netlab did not write on the way: {listed(drift.extra)}"
    else:
        return reordered(drift, node)
    return said + _and_order(drift)


def refused(drift: Drift, node: str) -> str:
    """Why node ``node``'s REJECT counted a packet the policies allow."""
    if drift.missing:
        n = len(drift.missing)
        said = (f"the rule that allows it is missing from node {node}'s filter table: {drift.missing[0]}" if n == 1
                else f"the rules that allow it are missing from node {node}'s filter table: {listed(drift.missing)}")
        if drift.extra:
            said += f"; and it holds rules netlab did not write: {listed(drift.extra)}"
        said += _and_order(drift)
    elif drift.extra:
        said = (f"node {node}'s filter table holds rules netlab did not write on the way: {listed(drift.extra)}"
                + _and_order(drift))
    else:
        said = reordered(drift, node)
    return f"{said} ({status_lists(drift)})"


def reordered(drift: Drift, node: str) -> str:
    """Node ``node``'s rules on the way are netlab's, none missing and none added, but a chain holds them in
    another order (or count) than the plan, which changes what the chain does: status's line for the first."""
    return f"node {node}'s filter table holds netlab's rules on the way, but {listed(drift.order, 1)}"


def _and_order(drift: Drift) -> str:
    return f"; and {listed(drift.order, 1)}" if drift.order else ""


def status_lists(drift: Drift) -> str:
    return f"`netlab status` lists {'it' if drift.count() == 1 else 'them'}"
