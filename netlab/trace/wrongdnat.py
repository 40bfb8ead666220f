"""A Service packet DNATed to an address that is none of its endpoints: the rule that did it, or conntrack's memory.

conntrack asks the nat table once per connection, for its first packet, and
keeps the answer in the connection's entry: every later packet of the same
five-tuple follows that entry past the nat table. So a Service packet sent to
the wrong address has one of these causes, and the kernel tells them apart:

- the node held the flow's entry before the packet came (the trace heard no
  NEW event for it while the packet ran: :attr:`CtEntry.made_before`): a
  stale entry an endpoint change left. Deleting the entry is the fix;
- the entry was made for this packet: the node's rules chose the address.
  The DNAT to it is then in the node's tables as the kernel holds them: in
  ``iptables-save -c -t nat`` (whose counter went up while the trace ran) or
  in kube-proxy's ``table ip kube-proxy`` (nftables mode: no counters). The
  plan's rules of that chain say what it should DNAT to, and putting the
  chain back as planned is the fix; deleting the entry changes nothing, the
  next connection is DNATed the same way.
- no entry at all, though a rule of an endpoint's chain DNATs astray: the
  packet died before conntrack confirmed its entry (it does so as the packet
  leaves the node), in the ARP queue of a dead address on the node's own
  bridge, say (:func:`unconfirmed_rule`). The rule is to blame all the same.

Pure: the kernel's tables and the plan's come in as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.kernel.iptables import command as ipt_command
from netlab.trace import kubeproxy_nft
from netlab.trace.facts import NatTable, NftTable
from netlab.trace.flow import Flow
from netlab.trace.kubeproxy import ENDPOINT_ROLE, _quoted, chain_of
from netlab.trace.labmap import LabMap, PlannedNat, ServiceFacts


@dataclass(frozen=True)
class WrongRule:
    """The rule of a node's tables that DNATs to the wrong address, and the plan's rules of its chain."""

    where: str  # "nat table" | "table ip kube-proxy"
    chain: str
    text: str  # the rule as the kernel holds it: an iptables-save line, or the rule's text in nft's words
    planned: tuple[str, ...]  # the plan's rules of the chain, in the same words (empty: no chain of the plan)
    counted: int | None = None  # packets its counter took while the trace ran (iptables; None: not counted)

    def dnat_planned(self) -> str | None:
        """The plan's DNAT rule of the chain: what this one should say."""
        return next((r for r in self.planned if dnat_to(r) is not None), None)


def dnat_to(rule: str) -> str | None:
    """``ADDRESS:PORT`` a rule DNATs to, in iptables-save's words or nft's; None: no DNAT."""
    words = rule.split()
    for i, w in enumerate(words[:-1]):
        if w == "--to-destination" or (w == "to" and i and words[i - 1] == "dnat"):
            return words[i + 1]
    return None


def iptables_rule(table: NatTable | None, planned: PlannedNat | None, to: str) -> WrongRule | None:
    """The rule of the nat table that DNATs to ``to`` (``ADDRESS:PORT``): the one whose counter moved first."""
    rules = [r for r in table.rules if dnat_to(r.line) == to] if table is not None else []
    if not rules:
        return None
    rule = next((r for r in rules if r.delta), rules[0])
    own = tuple(line for line in planned.rules if chain_of(line) == rule.chain) if planned is not None else ()
    return WrongRule("nat table", rule.chain, rule.line, own, rule.delta)


def nft_rule(table: NftTable | None, planned: tuple[str, ...], to: str) -> WrongRule | None:
    """The rule of kube-proxy's table that DNATs to ``to``."""
    for chain, rules in (table.rules.items() if table is not None else ()):
        text = next((r for r in rules if dnat_to(r) == to), None)
        if text is not None:
            own = tuple(line.split(" ", 3)[3] for line in planned if line.startswith(f"rule {chain} "))
            return WrongRule(f"table {kubeproxy_nft.TABLE}", chain, text, own)
    return None


@dataclass(frozen=True)
class Why:
    """The DNAT row's problem, fix and facts."""

    problem: str
    fix: str | None
    facts: dict[str, Any]


def explain(lab: LabMap, ns: str, svc: ServiceFacts, old: Flow, new: Flow, made_before: bool | None,
            nat: NatTable | None, nft: NftTable | None) -> Why:
    """Why node ``ns`` DNATed Service packet ``old`` to ``new``, which is none of the Service's endpoints."""
    node = lab.where(ns).split()[-1]
    to = f"{new.dst}:{new.dport}"
    eps = ", ".join(f"{e.ip}:{e.port} ({e.pod})" for e in svc.endpoints) or "none"
    wrong = f"{to}, which is no endpoint of Service {svc.name} (endpoints: {eps})"
    if made_before:
        return Why(f"conntrack already holds this flow and DNATs it to {wrong}: a stale entry an endpoint change "
                   "left; packets of a known flow skip the nat table, so kube-proxy's rules never see them",
                   delete_entry(ns, old) + f" --dst-nat {new.dst}", {"held_before": True, "stale_entry": True})
    rule = None
    if ns in lab.nft_netns:
        rule = nft_rule(nft, lab.planned_nft.get(ns, ()), to)
    if rule is None:
        rule = iptables_rule(nat, lab.planned_nat.get(ns), to)
    if rule is None and made_before is None:  # nobody heard the entry made: an older entry is all that is left
        return Why(f"conntrack holds this flow and DNATs it to {wrong}, and no rule of {node}'s tables DNATs "
                   "there: a stale entry an endpoint change left; packets of a known flow skip the nat table, so "
                   "kube-proxy's rules never see them", delete_entry(ns, old) + f" --dst-nat {new.dst}",
                   {"stale_entry": True})
    if rule is None:
        return Why(f"{node} DNATed this new connection to {wrong} (conntrack made its entry for this packet), yet "
                   f"no rule of {node}'s tables DNATs there now: did the rules change while the trace ran?", None,
                   {"held_before": False})
    return Why(_rule_problem(node, wrong, rule, svc), _fix(lab, ns, rule),
               {"held_before": False if made_before is False else None, "wrong_rule": rule.text,
                "wrong_chain": rule.chain, "planned_rule": rule.dnat_planned(), "rule_counted": rule.counted})


def _rule_problem(node: str, wrong: str, rule: WrongRule, svc: ServiceFacts) -> str:
    of = "" if rule.where == "nat table" else f" of chain {rule.chain}"  # an iptables-save line names its chain
    counted = ""
    if rule.counted is not None:
        counted = f" (its counter went up by {rule.counted} during the trace)" if rule.counted else \
            " (its counter did not move during the trace)"
    ep = next((e for e in svc.endpoints if e.sep_chain == rule.chain), None)
    planned = rule.dnat_planned()
    if planned is not None:
        should = f"where kube-proxy writes `{planned}`" + (f" ({ENDPOINT_ROLE}{ep.pod})" if ep else "")
    elif rule.planned:
        should = f"a rule kube-proxy does not write in chain {rule.chain}"
    else:
        should = f"in chain {rule.chain}, which is none of kube-proxy's"
    return (f"{node}'s {rule.where} DNATs this new connection to {wrong}: the rule `{rule.text}`{of} did it"
            f"{counted}, {should}; conntrack held no entry for this flow before the packet, so deleting the entry "
            "changes nothing: the next connection is DNATed the same way")


def _fix(lab: LabMap, ns: str, rule: WrongRule) -> str:
    """The chain put back as planned (its rules again, in the plan's order); `netlab up` for a chain the plan
    does not have (what jumps to it is not the plan's either)."""
    if not rule.planned:
        return lab.repair
    if rule.where != "nat table":
        return kubeproxy_nft.fix(ns, kubeproxy_nft.Step(f"chain {rule.chain}", ""), lab.planned_nft.get(ns, ()))
    ipt = f"ip netns exec {ns} {ipt_command()} -t nat"
    return " && ".join([f"{ipt} -F {rule.chain}"] + [f"{ipt} -A {rule.chain} {_quoted(line.split(None, 2)[2])}"
                                                     for line in rule.planned])


def delete_entry(ns: str, f: Flow) -> str:
    """The command that deletes the entry of exactly this flow in ``ns`` (its original tuple); with
    ``--dst-nat ADDRESS`` added, only while it is DNATed there."""
    return (f"ip netns exec {ns} conntrack -D -p {f.proto} --orig-src {f.src} --orig-port-src {f.sport} "
            f"--orig-dst {f.dst} --orig-port-dst {f.dport}")


def unconfirmed_rule(lab: LabMap, ns: str, svc: ServiceFacts, nat: NatTable | None, nft: NftTable | None,
                     gap_chain: str | None) -> WrongRule | None:
    """A Service packet that left node ``ns`` no conntrack entry, though an endpoint chain of the Service holds
    a DNAT to an address that is none of its endpoints: the rule that DNATed it, when the kernel says so.

    conntrack confirms a connection's entry as its first packet leaves the node (the last POSTROUTING hook):
    a packet DNATed to a dead address never gets there. DNATed to an address on the node's own bridge, the
    bridged frame waits in that address's ARP queue (br_netfilter's bridged DNAT asks the neighbour before
    the bridge's POSTROUTING) and is dropped there; no entry is left to name the DNAT. Then iptables' counter
    of the rule says it took the packet (it went up during the trace), and in nftables mode (no counters) the
    rule is in the chain of the endpoint whose DNAT the path lacks (``gap_chain``, the chain of the first rule
    the kernel lacks, :func:`kubeproxy_nft.missing`) and no other endpoint's chain DNATs astray: nothing else
    on the path could have taken it."""
    eps = {f"{e.ip}:{e.port}" for e in svc.endpoints}
    chains = [e.sep_chain for e in svc.endpoints if e.sep_chain]
    if ns in lab.nft_netns:
        if nft is None or gap_chain not in chains:
            return None
        wrong = {c: t for c in chains for t in map(dnat_to, nft.chain_rules(c)) if t is not None and t not in eps}
        if list(wrong) != [gap_chain]:  # several chains DNAT astray: no counter says which took the packet
            return None
        return nft_rule(nft, lab.planned_nft.get(ns, ()), wrong[gap_chain])
    if nat is None:
        return None
    wrong = [r for r in nat.rules if r.chain in chains and dnat_to(r.line) not in (None, *eps)]
    rule = next((r for r in wrong if r.delta), None)  # its counter went up: it took this packet
    if rule is None:
        return None
    return iptables_rule(nat, lab.planned_nat.get(ns), str(dnat_to(rule.line)))


def unconfirmed(lab: LabMap, ns: str, svc: ServiceFacts, f: Flow, rule: WrongRule, arp: str | None) -> Why:
    """Why node ``ns`` kept no entry for Service packet ``f``: ``rule`` DNATed it to an address that is no
    endpoint, and the packet died there before conntrack confirmed the connection (``arp``: what the node's
    neighbour table says of that address, when it is on one of the node's own links)."""
    node = lab.where(ns).split()[-1]
    to = str(dnat_to(rule.text))
    eps = ", ".join(f"{e.ip}:{e.port} ({e.pod})" for e in svc.endpoints) or "none"
    wrong = f"{to}, which is no endpoint of Service {svc.name} (endpoints: {eps})"
    problem = _rule_problem(node, wrong, rule, svc).split("; conntrack held no entry", 1)[0]
    died = arp or "it was lost on its way there"
    problem += (f"; conntrack kept no entry for this flow, because it confirms one only as the connection's first "
                f"packet leaves {node}, and this one never did: {died}")
    return Why(problem, _fix(lab, ns, rule),
               {"service": svc.name, "wrong_rule": rule.text, "wrong_chain": rule.chain,
                "planned_rule": rule.dnat_planned(), "rule_counted": rule.counted, "dnat_to": to,
                "unconfirmed": True, "dropped_here": True})


def arp_words(node: str, addr: str, dev: str | None, state: str | None) -> str | None:
    """What the node's neighbour table says of the address a packet was DNATed to, when it is on one of the
    node's own links (``dev``) and unresolved: nobody answered ARP for it."""
    if dev is None or state not in (None, "INCOMPLETE", "FAILED"):
        return None
    entry = f"its neighbour entry is {state}" if state else "it has no neighbour entry"
    return (f"{addr} is on {node}'s {dev} and nobody answers ARP for it ({entry}): the frame waited in the ARP "
            "queue and was dropped there")
