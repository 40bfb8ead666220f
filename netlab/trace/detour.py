"""The endpoint chain a Service packet really went through, when another endpoint's chain DNATs to the same address.

conntrack says where a Service packet was DNATed to (an endpoint's address),
not which of kube-proxy's chains did it. As planned, one endpoint chain
DNATs to each endpoint, so the address names the chain. A DNAT edited by
hand to another endpoint breaks that::

    KUBE-SVC-X: --probability 0.5 -j KUBE-SEP-A     KUBE-SEP-A: -s <A> -j KUBE-MARK-MASQ; DNAT to B (edited)
                -j KUBE-SEP-B                       KUBE-SEP-B: -s <B> -j KUBE-MARK-MASQ; DNAT to B

Half the connections go through KUBE-SEP-A (with A's hairpin masquerade)
and end up at B. Which chain took this packet is what the counters say: in
iptables mode every rule counts (read before and after the packet); in
nftables mode kube-proxy writes no counters, so only a ``counter`` the user
inserted in the endpoint chains tells. Without one the trace cannot know,
and says so: the packet went through one of the chains that DNAT there.

Pure: the kernel's tables and the plan's come in as data.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.kernel.iptables import command as ipt_command
from netlab.trace import kubeproxy_nft
from netlab.trace.facts import NatTable, NftTable
from netlab.trace.flow import Flow
from netlab.trace.kubeproxy import ENDPOINT_ROLE, _quoted, chain_of
from netlab.trace.labmap import LabMap, ServiceFacts
from netlab.trace.wrongdnat import dnat_to


@dataclass(frozen=True)
class Edited:
    """An endpoint chain whose DNAT is not the plan's: the rule as the kernel holds it, and the plan's."""

    chain: str
    pod: str  # the endpoint whose chain it is
    rule: str  # an iptables-save line, or the rule's text in nft's words
    planned: str | None
    fix: str


@dataclass(frozen=True)
class Detour:
    """The endpoint chains that DNAT to the packet's endpoint, beside (or instead of) that endpoint's own."""

    to: str  # ADDRESS:PORT
    pod: str  # the endpoint at that address
    chain: str | None  # the chain that DNATed the packet, when a counter says so (None: no counter tells)
    edited: tuple[Edited, ...]  # the chains whose DNAT is not the plan's: the one that took it, or all that may have
    counted: int | None = None  # the packets that chain's counter took during the trace
    candidates: tuple[str, ...] = ()  # every chain that DNATs there (when no counter tells which)

    def problem(self, node: str, where: str) -> str:
        rules = "; ".join(f"in {e.chain} (endpoint {e.pod}'s chain) the DNAT `{e.rule}` is not the plan's"
                          + (f" `{e.planned}` ({ENDPOINT_ROLE}{e.pod})" if e.planned else "") for e in self.edited)
        if self.chain is not None:
            e = self.edited[0]
            return (f"the packet went through {self.chain}, endpoint {e.pod}'s chain (its counter went up by "
                    f"{self.counted} during the trace), not {self.pod}'s own: {rules}; so {node}'s {where} sends "
                    f"{e.pod}'s share of the Service's connections to {self.pod}, by {e.pod}'s chain (and its "
                    f"masquerade rule for {e.pod}'s own packets)")
        chains = ", ".join(self.candidates)
        return (f"{len(self.candidates)} endpoint chains of {node}'s {where} DNAT to {self.to} ({chains}): the packet "
                f"went through one of them, and no counter says which (kube-proxy writes none in nftables mode; "
                f"`nft insert rule {kubeproxy_nft.TABLE} CHAIN counter` counts what enters a chain); {rules}")

    def fix(self) -> str:
        return " && ".join(e.fix for e in self.edited)

    def facts(self) -> dict[str, object]:
        return {"dnat_chain": self.chain, "dnat_chains": list(self.candidates) or None,
                "edited_rules": [e.rule for e in self.edited], "planned_rules": [e.planned for e in self.edited],
                "astray": True}


def iptables_detour(lab: LabMap, ns: str, svc: ServiceFacts, new: Flow, table: NatTable | None) -> Detour | None:
    """The SEP chain whose DNAT rule took the packet (its counter went up while the trace ran), when it is not the
    chain of the endpoint the packet was DNATed to."""
    to, ep = f"{new.dst}:{new.dport}", svc.endpoint(new.dst, new.dport)
    pods = {e.sep_chain: e.pod for e in svc.endpoints}
    if table is None or ep is None:
        return None
    dnats = [r for r in table.rules if r.chain in pods and dnat_to(r.line) == to]
    if all(r.chain == ep.sep_chain for r in dnats):
        return None  # as planned: only the endpoint's own chain DNATs there
    moved = [r for r in dnats if r.delta]
    if not moved and any(r.delta is not None for r in dnats):
        return None  # counted, and none took it: an earlier packet's entry did
    took = moved[:1] or [r for r in dnats if r.chain != ep.sep_chain]
    if took[0].chain == ep.sep_chain:
        return None  # the endpoint's own chain took it: the edited one was not on its path
    planned = lab.planned_nat.get(ns)
    edited = []
    for r in (r for r in dnats if r.chain != ep.sep_chain):
        plan = next((line for line in planned.rules if chain_of(line) == r.chain and dnat_to(line)), None) \
            if planned is not None else None
        at = [x.line for x in table.chain_rules(r.chain)].index(r.line) + 1
        fix = f"ip netns exec {ns} {ipt_command()} -t nat -R {r.chain} {at} {_quoted(plan.split(None, 2)[2])}" \
            if plan else lab.repair
        if moved and r is not took[0]:
            continue
        edited.append(Edited(r.chain, pods[r.chain], r.line, plan, fix))
    if moved:
        return Detour(to, ep.pod, took[0].chain, tuple(edited), took[0].delta)
    return Detour(to, ep.pod, None, tuple(edited), candidates=tuple(r.chain for r in dnats))


def nft_detour(lab: LabMap, ns: str, svc: ServiceFacts, new: Flow, table: NftTable | None) -> Detour | None:
    """The endpoint chains of kube-proxy's table that DNAT to the packet's endpoint besides its own: the one whose
    counter (one a user inserted) went up while the trace ran, else all of them (nothing says which)."""
    to, ep = f"{new.dst}:{new.dport}", svc.endpoint(new.dst, new.dport)
    pods = {e.sep_chain: e.pod for e in svc.endpoints}
    if table is None or ep is None:
        return None
    dnats = [(c, r) for c in pods for r in table.chain_rules(c) if dnat_to(r) == to]
    if all(c == ep.sep_chain for c, _ in dnats):
        return None
    counted = {c: table.counted(c) for c, _ in dnats}
    moved = [c for c, _ in dnats if counted[c]]
    if not moved and all(counted[c] is not None for c, _ in dnats):
        return None  # every chain counts, and none took it: an earlier packet's entry did
    if moved and moved[0] == ep.sep_chain:
        return None
    planned = lab.planned_nft.get(ns, ())
    edited = []
    for c, r in dnats:
        if c == ep.sep_chain or (moved and c != moved[0]):
            continue
        plan = next((line.split(" ", 3)[3] for line in planned if line.startswith(f"rule {c} ")
                     and dnat_to(line.split(" ", 3)[3])), None)
        fix = kubeproxy_nft.fix(ns, kubeproxy_nft.Step(f"chain {c}", ""), planned) if plan else lab.repair
        edited.append(Edited(c, pods[c], r, plan, fix))
    if moved:
        return Detour(to, ep.pod, moved[0], tuple(edited), counted[moved[0]])
    return Detour(to, ep.pod, None, tuple(edited), candidates=tuple(c for c, _ in dnats))
