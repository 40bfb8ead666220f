"""kube-proxy's nat rules as the trace reads them, iptables mode: the rule of ``KUBE-SVC-...`` (or
``KUBE-SVL-...``) that chose a Service packet's endpoint.

When the node DNATed the packet, conntrack names the endpoint, and the rule of the Service's chain that jumps
to that endpoint's chain (its counter went up while the trace ran) is the random choice, with its
``--probability`` and the chance of any new connection ending there; or sessionAffinity's ``recent --rcheck``
rule, when this client went there before. What the node lacked when it did not DNAT is
:mod:`netlab.trace.kubeproxy`'s (``Choice`` and ``chosen_by`` stay importable from there).

Pure: the kernel's table (:class:`~netlab.trace.facts.NatTable`) and the lab's Services
(:class:`~netlab.trace.labmap.LabMap`) come in as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from netlab.trace.facts import NatRule, NatTable
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap, ServiceEndpoint, ServiceFacts

PROBABILITY = re.compile(r"--probability (\S+)")


@dataclass(frozen=True)
class Choice:
    """The rule of ``KUBE-SVC-...`` that sent the packet to its endpoint's chain."""

    rule: NatRule
    position: int  # among the chain's jumps to endpoints, 1..
    of: int
    probability: float  # the rule's own: taken with this probability when the packet gets to it
    chance: Fraction  # of any new connection ending there: the rules before it let it pass, then this one takes it
    affinity: bool = False  # a `recent --rcheck` rule: this client went there before (sessionAffinity: ClientIP)
    passed: tuple[float, ...] = ()  # the probabilities of the rules before it, which let the packet pass

    def text(self) -> str:
        counted = ""
        if self.rule.delta is not None:
            counted = f"; its counter went up by {self.rule.delta} during the trace" if self.rule.delta else \
                "; its counter did not move during the trace (an earlier packet of the connection?)"
        if self.affinity:
            return (f"`{self.rule.line}`: sessionAffinity ClientIP, this client's address was sent there before "
                    f"(the recent match remembers it){counted}")
        before = ", ".join(f"--probability {p:g}" for p in self.passed)
        if PROBABILITY.search(self.rule.line):
            how = f"rule {self.position} of {self.of}, taken with probability {self.probability:g}"
            if self.passed:
                how += f" once the rules before it ({before}) let the packet pass"
        elif self.passed:
            how = (f"rule {self.position} of {self.of}, no statistic match: it takes every packet the rules before "
                   f"it ({before}) let pass")
        else:
            how = f"rule {self.position} of {self.of}, no statistic match: the only endpoint takes every packet"
        return f"`{self.rule.line}` ({how}; {self.chance.numerator} in {self.chance.denominator} overall){counted}"

    def short(self) -> str:
        """For the DNAT row: which rule of the Service's chain, with which probability."""
        chain = self.rule.chain
        if self.affinity:
            return f"{chain}'s sessionAffinity rule (recent --rcheck) chose it: this client went there before"
        p = f"--probability {self.probability:g}" if PROBABILITY.search(self.rule.line) else "no statistic match"
        return f"{chain} rule {self.position} of {self.of} chose it ({p}; {self.chance} overall)"

    def facts(self) -> dict[str, object]:
        return {"rule": self.rule.line, "probability": self.probability, "chance": str(self.chance),
                "rule_position": self.position, "rules": self.of, "affinity": self.affinity,
                "rule_counted": self.rule.delta, "chosen_by": self.text()}


def chosen_by(lab: LabMap, table: NatTable | None, old: Flow, new: Flow, own: bool = False,
              via: str | None = None) -> Choice | None:
    """The rule that chose the endpoint of a Service's DNAT ``old`` → ``new`` (``own``: the node's own packet;
    ``via``: the endpoint chain that DNATed it, when it is not the endpoint's own; None: unknown)."""
    svc = lab.service_for(old.dst, old.dport, old.proto)
    ep = svc.endpoint(new.dst, new.dport) if svc else None
    ep = next((e for e in svc.endpoints if e.sep_chain == via), ep) if svc and via else ep
    if table is None or svc is None or ep is None:
        return None
    # externalTrafficPolicy Local: an outside client's packet is picked in KUBE-SVL, the node's own in KUBE-SVC
    # (short-circuited); the counters say which when the source alone does not.
    first = svc.chain_for(old.src, old.dst, own)
    picks = [choice(table, svc, ep, c) for c in dict.fromkeys((first, svc.svc_chain))]
    return next((p for p in picks if p is not None and p.rule.delta), picks[0])


def choice(table: NatTable, svc: ServiceFacts, ep: ServiceEndpoint, chain: str | None = None) -> Choice | None:
    """The rule of the Service's chain (or ``chain``) that chose ``ep``: the one whose counter moved, else the
    random one."""
    rules = table.chain_rules(chain or svc.svc_chain)
    seps = {e.sep_chain for e in svc.endpoints}
    random = [r for r in rules if r.target in seps and "--rcheck" not in r.line]
    sticky = [r for r in rules if r.target == ep.sep_chain and "--rcheck" in r.line]
    if any(r.delta for r in sticky):
        rule = next(r for r in sticky if r.delta)
        return Choice(rule, 1, 1, 1.0, Fraction(1), affinity=True)
    mine = [r for r in random if r.target == ep.sep_chain]
    if not mine:
        return None
    rule = next((r for r in mine if r.delta), mine[0])
    chance, passed, earlier = Fraction(1), Fraction(1), []
    for r in random:
        m = PROBABILITY.search(r.line)
        p = Fraction(m.group(1)).limit_denominator(1000) if m else Fraction(1)
        if r is rule:
            chance = passed * p
            break
        passed *= 1 - p
        earlier.append(float(m.group(1)) if m else 1.0)
    m = PROBABILITY.search(rule.line)
    return Choice(rule, random.index(rule) + 1, len(random), float(m.group(1)) if m else 1.0, chance,
                  passed=tuple(earlier))
