"""kube-proxy's nat rules as the trace reads them: the rule a Service packet was missing, the rule that chose its
endpoint.

A packet for a Service crosses a fixed chain of rules in the node's nat
table (see :mod:`netlab.plan.services`)::

    PREROUTING / OUTPUT ─► KUBE-SERVICES ─► -d <ClusterIP>/32 ... --dport <port> ─► KUBE-SVC-<hash>
                             └► (last) --dst-type LOCAL ─► KUBE-NODEPORTS ─► --dport <nodePort> ─► KUBE-EXT-<hash>
    KUBE-SVC-<hash>: -m statistic --mode random --probability 1/n ─► KUBE-SEP-1,
                     1/(n-1) ─► KUBE-SEP-2, ... ─► KUBE-SEP-n
    KUBE-SEP-<hash>: DNAT --to-destination <pod IP>:<targetPort>
    KUBE-EXT-<hash> (externalTrafficPolicy Local): -s <pod CIDR> ─► KUBE-SVC-<hash> (pods: every endpoint),
                     --src-type LOCAL ─► KUBE-MARK-MASQ, KUBE-SVC-<hash> (the node itself: every endpoint),
                     the rest (outside clients) ─► KUBE-SVL-<hash>: the node's own endpoints only
    (internalTrafficPolicy Local: the ClusterIP's rule in KUBE-SERVICES jumps to KUBE-SVL-<hash> too)

Only the rules a packet crosses are its path: in KUBE-EXT, those of its sender;
then the chain that picks its endpoint, and the endpoint chains that one jumps to.

When the node did not DNAT the packet, the first rule (or chain) of that
path that the plan has and the kernel lacks, and without which the packet
cannot reach its DNAT, is the reason: without it the ClusterIP, an address
no interface owns, follows the node's routes as it is. ``-j KUBE-MARK-MASQ``
(a mark that asks for a masquerade later) and sessionAffinity's ``recent
--rcheck`` are on the way but decide nothing: a packet that lacks them is
DNATed all the same. So a flushed ``KUBE-SEP-...`` is blamed on its DNAT
rule, and its fix puts back every rule the chain lacks. When that is an
endpoint's, the other endpoints whose DNAT the kernel lacks too are named
with it, and fixed with it: the random choice sent the packet to one of them,
and without a DNAT no conntrack entry says which.
When it did, conntrack names the endpoint, and the rule of ``KUBE-SVC-...``
that jumps to that endpoint's chain (its counter went up while the trace
ran) is the random choice, with its ``--probability``: that reading is
:mod:`netlab.trace.kubeproxy_choice`'s (``Choice``, ``chosen_by`` and
``choice`` stay importable from here).

Pure: the kernel's table (:class:`~netlab.trace.facts.NatTable`) and the
plan's (:class:`~netlab.trace.labmap.PlannedNat`) come in as data.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from netlab.kernel.iptables import command as ipt_command
from netlab.plan.iptables import BUILTIN_CHAINS
from netlab.plan.services import KUBE_MARK_MASQ, KUBE_NODEPORTS, KUBE_SERVICES
from netlab.trace.facts import NatTable
from netlab.trace.flow import Flow
from netlab.trace.kubeproxy_choice import Choice as Choice
from netlab.trace.kubeproxy_choice import choice as choice
from netlab.trace.kubeproxy_choice import chosen_by as chosen_by
from netlab.trace.labmap import LabMap, PlannedNat, ServiceFacts

ENDPOINT_ROLE = "the DNAT to endpoint "  # + the pod: the role of an endpoint chain's lines, in both modes
SAFE = re.compile(r"[\w@%+=:,./!-]+")  # words a shell takes as they are


@dataclass(frozen=True)
class Step:
    """One planned rule on a Service packet's path, and what it does for the packet."""

    line: str
    role: str  # "the jump into kube-proxy's rules", "Service web's entry in KUBE-SERVICES" ...


@dataclass(frozen=True)
class Missing:
    """What the kernel lacks of a Service packet's path: a rule, or a whole chain."""

    step: Step
    chain: str | None = None  # set when the chain itself is missing
    position: int = 1  # the rule's place in its chain, as planned (for iptables -I)
    # Every rule of the step's chain the kernel lacks (the step's own too), in the plan's order, each with
    # the place it goes back to: a flushed chain gets all its rules again, not only the one named.
    restore: tuple[tuple[str, int], ...] = ()
    # The other endpoints whose DNAT is missing too, when this is an endpoint's: the packet was sent to one of
    # them (no conntrack entry says which), and the fix puts back all of them.
    alike: tuple["Missing", ...] = ()
    table: str = "nat"  # the iptables table it is missing from: nat, or filter (a REJECT of kube-proxy's)

    @property
    def others(self) -> list[str]:
        """The chain's other missing rules, beside the one that decides."""
        return [line for line, _ in self.restore if line != self.step.line]

    def what(self) -> str:
        if self.chain:
            return f"chain {self.chain} ({self.step.role})"
        return f"the rule `{self.step.line}` ({self.step.role})"

    def text(self, node: str) -> str:
        out = f"{self.what()} is missing from {node}'s {self.table} table{'' if self.chain else also(self.others)}"
        return out + other_endpoints([m.what() for m in self.alike])

    def fix(self, netns: str, planned: PlannedNat) -> str:
        """The iptables commands that put back what is missing, in the plan's order."""
        ipt = f"ip netns exec {netns} {ipt_command()} -t {self.table}"
        if self.chain:
            rules = [line for line in planned.rules if line.split(None, 2)[1] == self.chain]
            own = " && ".join([f"{ipt} -N {self.chain}"] + [f"{ipt} {_quoted(line)}" for line in rules])
        else:
            restore = self.restore or ((self.step.line, self.position),)
            own = " && ".join(f"{ipt} -I {chain_of(line)} {at} {_quoted(line.split(None, 2)[2])}"
                              for line, at in restore)
        return " && ".join([own] + [m.fix(netns, planned) for m in self.alike])

    def lacks(self) -> str:
        """What the decision line names: the chain, or the rule's role (every endpoint's, when several)."""
        if self.alike:
            return endpoints_lacking([self.step.role] + [m.step.role for m in self.alike])
        return f"chain {self.chain}" if self.chain else self.step.role


def other_endpoints(whats: list[str]) -> str:
    """``; so is the rule `...` (the DNAT to endpoint web-2): ...``: the other endpoints a packet may have
    been sent to, whose DNAT is missing too."""
    if not whats:
        return ""
    return (f"; so {'is' if len(whats) == 1 else 'are'} {' and '.join(whats)}: the packet was sent to one of "
            f"these {len(whats) + 1} endpoints, which no conntrack entry names")


def endpoints_lacking(roles: list[str]) -> str:
    """``the DNAT to endpoints web-1 and web-2``."""
    pods = [role.removeprefix(ENDPOINT_ROLE) for role in roles]
    return f"the DNAT to endpoints {', '.join(pods[:-1])} and {pods[-1]}"


def chain_of(line: str) -> str:
    return line.split(None, 2)[1]


def also(rules: list[str]) -> str:
    """`` (and so is the chain's other rule `...`)``: what the fix puts back beside the rule named."""
    if not rules:
        return ""
    listed = ", ".join(f"`{rule}`" for rule in rules)
    if len(rules) == 1:
        return f" (and so is the chain's other rule {listed})"
    return f" (and so are {len(rules)} more of the chain's rules: {listed})"


def _quoted(spec: str) -> str:
    return " ".join(w if SAFE.fullmatch(w) else shlex.quote(w) for w in shlex.split(spec))


def hook(iif: str | None) -> str:
    """A node's own sockets enter nat at OUTPUT; packets from a device at PREROUTING."""
    return "PREROUTING" if iif else "OUTPUT"


def path(planned: PlannedNat, svc: ServiceFacts, f: Flow, iif: str | None) -> list[Step]:
    """The planned rules packet ``f`` (for this Service) crosses in a node's nat table, in order: in the
    Service's external chain those that match its sender, then the chain that picks its endpoint (the node's
    own endpoints' KUBE-SVL for an outside client of an externalTrafficPolicy Local Service, and for the
    ClusterIP with internalTrafficPolicy Local), then the chains of the endpoints that chain jumps to."""
    dst, dport, own = f.dst, f.dport, iif is None

    def chain(name: str) -> list[str]:
        return [line for line in planned.rules if line.split(None, 2)[1] == name]

    def entry(line: str) -> bool:
        return f"-d {dst}/32 " in line and f"--dport {dport} " in line + " "

    steps = [Step(line, "the jump into kube-proxy's rules") for line in chain(hook(iif))
             if line.endswith(f"-j {KUBE_SERVICES}")]
    svc_port = f"Service {svc.name}"
    direct = [line for line in chain(KUBE_SERVICES) if entry(line)]
    if direct:
        steps += [Step(line, f"{svc_port}'s entry in {KUBE_SERVICES}") for line in direct]
    elif svc.node_port is not None and dport == svc.node_port:
        steps += [Step(line, f"the jump to the nodePorts, last in {KUBE_SERVICES}") for line in chain(KUBE_SERVICES)
                  if line.endswith(f"-j {KUBE_NODEPORTS}")]
        steps += [Step(line, f"{svc_port}'s nodePort {dport} in {KUBE_NODEPORTS}") for line in chain(KUBE_NODEPORTS)
                  if f"--dport {dport} " in line + " "]
    if svc.fw_chain and svc.ext_chain and any(s.line.endswith(f"-j {svc.fw_chain}") for s in steps):
        # loadBalancerSourceRanges: KUBE-FW passes a source in the ranges on to the external chain
        passed = [line for line in chain(svc.fw_chain) if line.endswith(f"-j {svc.ext_chain}")
                  and _source_in(line, f.src)][:1]
        steps += [Step(line, f"{svc_port}'s loadBalancerSourceRanges, which the source is in") for line in passed]
    pick = svc.chain_for(f.src, dst, own)
    if svc.ext_chain and any(s.line.endswith(f"-j {svc.ext_chain}") for s in steps):
        who = svc.sender(f.src, own)
        steps += [Step(line, f"{svc_port}'s way in from outside the cluster") for line in chain(svc.ext_chain)
                  if _crossed(line, who, pick, svc.pod_cidr)]
    picks = chain(pick)
    steps += [Step(line, f"{svc_port}'s choice of {_among(svc, pick)}") for line in picks]
    targets = {line.rpartition(" -j ")[2] for line in picks}
    for ep in svc.endpoints:
        if ep.sep_chain in targets:
            steps += [Step(line, f"the DNAT to endpoint {ep.pod}") for line in chain(ep.sep_chain)]
    return steps


def _source_in(line: str, src: str | None) -> bool:
    """The rule's ``-s <cidr>`` holds ``src`` (a rule without one holds every source)."""
    words = line.split()
    if "-s" not in words:
        return True
    cidr = words[words.index("-s") + 1]
    return src is not None and IPv4Address(src) in IPv4Network(cidr, strict=False)


def _among(svc: ServiceFacts, pick: str) -> str:
    return "one of the node's own endpoints" if pick == svc.local_chain else "an endpoint"


def _crossed(line: str, who: str, pick: str, pod_cidr: str) -> bool:
    """A rule of the external chain that decides for this sender's packet: it jumps to the chain that picks
    (or marks for the masquerade), and its source match (the pod CIDR's; the node's own addresses') is the
    sender's. With externalTrafficPolicy Local the chain sends pods and the node itself to every endpoint,
    the rest to the node's own: a missing rule of another sender's is not this packet's reason."""
    if line.rpartition(" -j ")[2] not in (pick, KUBE_MARK_MASQ):
        return False
    if f"-s {pod_cidr} " in line:
        return who == "pod"
    if "--src-type LOCAL" in line:
        return who == "node"
    return True


def decides(line: str) -> bool:
    """Without this rule the packet misses its DNAT. A mark for the masquerade does not decide (the packet
    goes on to its DNAT unmarked), nor does sessionAffinity's check (the statistic rules choose instead)."""
    return not (line.endswith(f"-j {KUBE_MARK_MASQ}") or "--rcheck" in line)


def missing(table: NatTable, planned: PlannedNat, steps: list[Step], kind: str = "nat") -> Missing | None:
    """The first rule or chain of the packet's path that the plan has, the kernel lacks and the DNAT needs;
    when it is an endpoint's, with the other endpoints' that the kernel lacks too (``alike``). ``kind``: the
    table (nat; filter, for the REJECT of a Service without endpoints)."""
    gaps = (replace(gap, table=kind) for gap in (_gap(table, planned, step) for step in steps) if gap is not None)
    first = next(gaps, None)
    if first is None or not first.step.role.startswith(ENDPOINT_ROLE):
        return first
    alike: dict[str, Missing] = {}  # one per endpoint: a missing chain fails each of its rules
    for gap in gaps:
        if gap.step.role.startswith(ENDPOINT_ROLE) and gap.step.role != first.step.role:
            alike.setdefault(gap.step.role, gap)
    return replace(first, alike=tuple(alike.values()))


def _gap(table: NatTable, planned: PlannedNat, step: Step) -> Missing | None:
    chain = chain_of(step.line)
    if chain not in BUILTIN_CHAINS and chain not in table.chains:
        return Missing(step, chain=chain)
    if table.rule(step.line) is None and decides(step.line):
        restore, at = [], 0
        for line in (line for line in planned.rules if chain_of(line) == chain):
            at += 1  # its place once the rules before it are back
            if table.rule(line) is None:
                restore.append((line, at))
        position = next((p for line, p in restore if line == step.line), 1)
        return Missing(step, position=position, restore=tuple(restore))
    return None


def lost_targets(table: NatTable, planned: PlannedNat, gap: Missing) -> list[str]:
    """The chains that the rules the fix puts back jump to and the kernel lacks as well (the jump from PREROUTING
    deleted, then KUBE-SERVICES, say): iptables refuses a jump to a chain that does not exist, so those rules
    cannot go back alone."""
    if gap.chain:
        lines = [line for line in planned.rules if chain_of(line) == gap.chain]
    else:
        lines = [line for line, _ in gap.restore] or [gap.step.line]
    out: dict[str, None] = {}
    for line in lines:
        words = line.split()
        for i, w in enumerate(words[:-1]):
            target = words[i + 1]
            if w in ("-j", "-g") and target in planned.chains and target not in BUILTIN_CHAINS \
                    and target not in table.chains and target != gap.chain:
                out[target] = None
    return list(out)


def targets_too(chains: list[str]) -> str:
    """``; and chain X, which it jumps to, is missing too (...)``: why the fix is the whole ruleset again."""
    if not chains:
        return ""
    many = len(chains) > 1
    return (f"; and {'chains' if many else 'chain'} {', '.join(chains)}, which it jumps to, {'are' if many else 'is'} "
            "missing too (a jump to a chain that does not exist cannot be put back)")


@dataclass(frozen=True)
class NoDnat:
    """Why a node did not DNAT a Service packet: the row the walker writes."""

    decision: str
    problem: str
    commands: list[str]
    fix: str | None = None
    cause: bool = False  # doomed here: the packet goes on, to nowhere (see verdict.explain)
    facts: dict[str, Any] = field(default_factory=dict)


def without_dnat(node: str, svc: ServiceFacts, f: Flow, iif: str | None = None) -> str:
    """What becomes of a Service packet node ``node`` did not DNAT, in iptables mode (nothing refuses it). ``iif``:
    the device it came in by (None: the node's own packet); an outside client's to the balancer's IP came in from
    the internet's gateway, whose route for it sent it here, and goes back there (a loop when that route names this
    node again: ttlloop.py says where its TTL runs out)."""
    if f.dst == svc.lb_ip and iif is not None and f.src is not None and svc.sender(f.src) == "outside":
        return (f"the packet follows {node}'s routes as it is, back out to the internet's gateway it came in from, "
                f"whose route for {f.dst} sends it to a node again")
    if f.dst == svc.lb_ip:  # the internet's gateway routes every LoadBalancer IP to the nodes (plan/internet.py)
        return (f"the packet follows {node}'s routes as it is, out of the cluster to the internet's gateway, which "
                f"routes {f.dst} back to a node: the way kube-proxy's rule spares it")
    if f.dst in svc.addresses:
        return f"{f.dst} is an address no interface owns, and the packet follows {node}'s routes as it is"
    return f"the packet stays addressed to {node} itself, port {f.dport}, where no socket listens"  # a nodePort


def reject_path(planned: PlannedNat, f: Flow, iif: str | None, local: bool = False,
                nodeport: bool = False) -> list[Step]:
    """The planned filter rules that refuse packet ``f`` for a Service without endpoints (``local``: that drop it
    for one without endpoints on this node): the jump from FORWARD (a pod's packet; OUTPUT for the node's own;
    INPUT for a ``nodeport``'s, addressed to the node itself) to the chain that holds the REJECT (DROP), and it."""
    what, end = ("has no local endpoints", "-j DROP") if local else \
        ("has no endpoints", "-j REJECT --reject-with icmp-port-unreachable")
    to = " -m addrtype --dst-type LOCAL " if nodeport else f" -d {f.dst}/32 "

    def matches(line: str) -> bool:
        return to in line and f"--dport {f.dport} " in line and line.endswith(end) and f'{what}"' in line
    reject = next((line for line in planned.rules if matches(line)), None)
    if reject is None:
        return []
    hook = "INPUT" if nodeport else "FORWARD" if iif else "OUTPUT"
    jumps = [Step(line, "the jump into kube-proxy's filter rules") for line in planned.rules
             if chain_of(line) == hook and line.endswith(f"-j {chain_of(reject)}")]
    role = "kube-proxy's DROP for a node without endpoints of its own" if local else \
        "kube-proxy's REJECT of a Service without endpoints"
    return jumps + [Step(reject, role)]


def rejected_words(node: str, said: str, rule: str) -> str:
    """Why a Service without endpoints refused the packet, as the result says it (REFUSED, not LOST): the node
    and kube-proxy's rule that answered it at once, as a closed port's kernel does (trace/refusal.py)."""
    return (f"{said}: node {node}'s kube-proxy {rule} rejected it at once with an ICMP port unreachable (the client's "
            "connection is refused, it does not time out)")


def no_endpoints(lab: LabMap, filt: NatTable | None, ns: str, svc: ServiceFacts, f: Flow, iif: str | None,
                 commands: list[str], local: bool = False) -> NoDnat:
    """A packet for a Service without endpoints: kube-proxy's filter rule rejects it at once (ICMP port
    unreachable), when the kernel's filter table holds that REJECT and the jump to it (``local``: one without
    endpoints on this node, for this sender: its DROP). Without them nothing refuses it here: the ClusterIP
    follows the node's routes as it is (to the gateway, say), a nodePort stays the node's own, and whoever is
    there answers, or nobody does."""
    node = lab.where(ns).split()[-1]
    commands = commands + [f"ip netns exec {ns} {ipt_command('iptables-save')} -c -t filter"]
    planned = lab.planned_filter.get(ns)
    nodeport = f.dst not in svc.addresses
    steps = reject_path(planned, f, iif, local, nodeport) if planned is not None else []
    gap = missing(filt, planned, steps, "filter") if filt is not None and planned is not None and steps else None
    said = svc.no_local_words(node, f.dst) if local else f"Service {svc.name} has no endpoints"
    if gap is None or planned is None:
        rule = filt.rule(steps[-1].line) if filt is not None and steps else None
        by = f" `{rule.line}`" if rule is not None else ""
        if rule is not None and rule.delta:
            by += f" (its counter went up by {rule.delta} during the trace)"
        if local:
            chain = "KUBE-SERVICES" if f.dst == svc.ip else "KUBE-EXTERNAL-SERVICES"
            by = by or f' "{svc.name} has no local endpoints" in {chain}'
            return NoDnat(f"no DNAT for {f}: {svc.name} has no local endpoints", f"{said}; the filter rule{by} "
                          "drops the packet", commands, cause=True,
                          facts={"dropped_here": True, "no_local_endpoints": True})
        named = f"`{rule.line}`" if rule is not None else f"`{steps[-1].line}`" if steps else \
            f'"{svc.name} has no endpoints" in KUBE-SERVICES'
        return NoDnat(f"no DNAT for {f}", f"{said}: kube-proxy's filter rule{by} "
                      "rejects the packet", commands, cause=True,
                      facts={"dropped_here": True, "rejected": rejected_words(node, said, f"filter rule {named}")})
    why = (f"{said}, yet {node} did not {'drop' if local else 'refuse'} this packet: {gap.text(node)}; "
           f"without it {without_dnat(node, svc, f, iif)}")
    head = f"{svc.name} has no local endpoints" if local else f"Service {svc.name} has no endpoints"
    return NoDnat(f"no DNAT for {f}: {head}, and {gap.lacks()} is missing", why,
                  commands, gap.fix(ns, planned), cause=True,
                  facts={"service": svc.name, "missing_rule": gap.step.line, "missing_chain": gap.chain,
                         "missing_from": "filter", "also_missing": gap.others or None,
                         **({"no_local_endpoints": True} if local else {})})


def no_dnat(lab: LabMap, table: NatTable | None, ns: str, svc: ServiceFacts, f: Flow, iif: str | None,
            filt: NatTable | None = None) -> NoDnat:
    """A Service packet that node ``ns`` did not DNAT: the rule or chain it lacks, when the kernel's table says so
    (``filt``: the kernel's filter table, for a Service without endpoints, or none on this node)."""
    node = lab.where(ns).split()[-1]
    commands = [f"ip netns exec {ns} conntrack -L -p {f.proto} --orig-dst {f.dst}"]
    if not svc.endpoints:
        return no_endpoints(lab, filt, ns, svc, f, iif, commands)
    if svc.dropped_on(node, f.src, f.dst, own=iif is None):
        return no_endpoints(lab, filt, ns, svc, f, iif, commands, local=True)
    commands.append(f"ip netns exec {ns} {ipt_command('iptables-save')} -c -t nat")
    planned = lab.planned_nat.get(ns)
    gap = missing(table, planned, path(planned, svc, f, iif)) if table and planned else None
    if gap is None or planned is None:
        return NoDnat(f"no DNAT for {f}", f"{f.endpoint('dst')} is Service {svc.name} but {ns} has no conntrack "
                      "entry for this packet: it was not DNATed here", commands)
    then = without_dnat(node, svc, f, iif)
    lost = lost_targets(table, planned, gap)
    why = (f"{node} did not DNAT this packet for Service {svc.name}: {gap.text(node)}{targets_too(lost)}; "
           f"{'without a DNAT' if gap.alike else 'without them' if lost else 'without it'} {then}")
    return NoDnat(f"no DNAT for {f}: {gap.lacks()} {'are' if gap.alike else 'is'} missing", why, commands,
                  lab.repair if lost else gap.fix(ns, planned), cause=True,
                  facts={"service": svc.name, "missing_rule": gap.step.line, "missing_chain": gap.chain,
                         "also_missing": gap.others or None, "missing_targets": lost or None,
                         "other_endpoints_missing": [f"chain {m.chain}" if m.chain else m.step.line
                                                     for m in gap.alike] or None})
