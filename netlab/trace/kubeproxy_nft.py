"""kube-proxy's nftables table as the trace reads it: what a Service packet was missing, what chose its endpoint.

In nftables mode a Service packet crosses (plan/nftables.py)::

    nat-prerouting / nat-output: jump services
    services: ip daddr . meta l4proto . th dport vmap @service-ips
              (nodePorts: ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports)
    service-ips element  <ClusterIP> . tcp . 80 : goto service-<hash>-<ns>/<svc>/tcp/<port>
    service-...:  [ip saddr @affinity-... goto endpoint-...]  numgen random mod N vmap { i : goto endpoint-... }
    endpoint-...: meta l4proto tcp dnat to <pod IP>:<port>
    external-... (externalTrafficPolicy Local): ip saddr <pod CIDR> goto service-... (pods), fib saddr type
                  local goto service-... (the node itself), the rest goto local-...: the node's own endpoints
    (internalTrafficPolicy Local: the ClusterIP's element leads to local-... too)

When the node did not DNAT, the first of those lines (a rule, a chain or a
map element) that the plan has and the kernel's table lacks, and without
which the packet cannot reach its ``dnat``, is the reason. The mark that asks
for a masquerade later (``jump mark-for-masquerade``) and sessionAffinity's
bookkeeping (``ip saddr @affinity-...``, ``update @affinity-...``) are on the
way but decide nothing: a packet that lacks them is DNATed all the same. So a
flushed endpoint chain is blamed on its ``dnat to`` rule, its other rules
named beside it, and so is every other endpoint whose ``dnat to`` is missing
too (the packet went to one of them). A rule is compared by its text within
its chain: the kernel numbers a chain's rules by position, and one rule less
renumbers the rest.
When it did, conntrack names the endpoint, and the element of the ``numgen``
verdict map that leads to its chain is the random choice (1 in N); when the
client's address was in that endpoint's affinity set before the packet, the
affinity rule chose it. kube-proxy writes no counters in this mode; a
``counter`` a user inserted in those chains (as inspect suggests) is read.

Pure: the kernel's table (:class:`~netlab.trace.facts.NftTable`) and the plan's listing come in as data.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from fractions import Fraction

from netlab.plan import nftables
from netlab.trace import kubeproxy
from netlab.trace.flow import Flow
from netlab.trace.facts import NftTable
from netlab.trace.kubeproxy import ENDPOINT_ROLE, NoDnat, also, endpoints_lacking, other_endpoints, rejected_words
from netlab.trace.labmap import LabMap, ServiceEndpoint, ServiceFacts

TARGET = re.compile(r"\b(?:goto|jump) (\S+)")
VMAP = re.compile(r"^numgen random mod (\d+) vmap \{ (.*) \}$")
TABLE = f"{nftables.FAMILY} {nftables.TABLE}"


@dataclass(frozen=True)
class Step:
    """One planned line (``rule CHAIN NNNN ...``, ``chain X`` or ``element MAP ...``) on the packet's path."""

    line: str
    role: str


def _rules(planned: tuple[str, ...], chain: str) -> list[str]:
    return [line for line in planned if line.startswith(f"rule {chain} ")]


def path(planned: tuple[str, ...], svc: ServiceFacts, f: Flow, iif: str | None) -> list[Step]:
    """The planned lines packet ``f`` (for this Service) crosses in a node's table, in order: as in iptables
    mode (kubeproxy.path), the external chain's rules that match its sender, the chain that picks its
    endpoint (the node's own endpoints' ``local-...`` for an outside client of an externalTrafficPolicy Local
    Service, and for the ClusterIP with internalTrafficPolicy Local), the endpoints that chain leads to."""
    dst, dport, own = f.dst, f.dport, iif is None
    hook = "nat-prerouting" if iif else "nat-output"
    steps = [Step(line, "the jump into kube-proxy's table") for line in _rules(planned, hook)]
    services = _rules(planned, nftables.SERVICES)
    key = f"{dst} . {svc.protocol} . {dport} : "
    entry = [line for line in planned if line.startswith(f"element service-ips {key}")]
    if entry:
        steps += [Step(services[0], "the Service dispatch (map service-ips)")] if services else []
        steps += [Step(line, f"Service {svc.name}'s element in map service-ips") for line in entry]
    elif svc.node_port is not None and dport == svc.node_port:
        steps += [Step(line, "the nodePort dispatch (map service-nodeports)") for line in services[1:2]]
        steps += [Step(line, "the node's address in set nodeport-ips") for line in planned
                  if line.startswith("element nodeport-ips ")]
        steps += [Step(line, f"Service {svc.name}'s nodePort {dport} in map service-nodeports") for line in planned
                  if line.startswith(f"element service-nodeports {svc.protocol} . {dport} : ")]
    pick = svc.chain_for(f.src, dst, own)
    if svc.ext_chain and any(s.line.endswith(f"goto {svc.ext_chain}") for s in steps):
        who = svc.sender(f.src, own)
        steps += [Step(f"chain {svc.ext_chain}", f"{svc.name}'s way in from outside the cluster")]
        steps += [Step(line, f"{svc.name}'s way in from outside the cluster")
                  for line in _rules(planned, svc.ext_chain) if _crossed(_text(line), who, pick, svc.pod_cidr)]
    picks = _rules(planned, pick)
    own_only = pick == svc.local_chain
    among = "one of the node's own endpoints" if own_only else "an endpoint"
    steps.append(Step(f"chain {pick}", f"Service {svc.name}'s chain"
                      + (" of the node's own endpoints" if own_only else "")))
    steps += [Step(line, f"Service {svc.name}'s choice of {among}") for line in picks]
    for ep in svc.endpoints:
        if not any(f"goto {ep.sep_chain}" in line for line in picks):
            continue  # not among the endpoints this chain picks from
        steps.append(Step(f"chain {ep.sep_chain}", f"the DNAT to endpoint {ep.pod}"))
        steps += [Step(line, f"the DNAT to endpoint {ep.pod}") for line in _rules(planned, ep.sep_chain)]
    return [s for s in steps if s.line in planned]


def _crossed(text: str, who: str, pick: str, pod_cidr: str) -> bool:
    """A rule of the external chain that decides for this sender's packet (see kubeproxy._crossed): it leads to
    the chain that picks (or marks for the masquerade), and its source match is the sender's."""
    leads = TARGET.search(text)
    if leads is None or leads.group(1) not in (pick, nftables.MARK_MASQ):
        return False
    if text.startswith(f"ip saddr {pod_cidr} "):
        return who == "pod"
    if text.startswith("fib saddr type local "):
        return who == "node"
    return True


def _text(line: str) -> str:
    """``rule CHAIN NNNN TEXT`` -> TEXT."""
    return line.split(" ", 3)[3]


def present(table: NftTable, line: str) -> bool:
    """The kernel's table holds this planned line (a rule: its text, anywhere in its chain)."""
    if line.startswith("rule "):
        return _text(line) in table.chain_rules(line.split(" ", 2)[1])
    return line in table.listing


def decides(step: Step) -> bool:
    """Without this line the packet misses its DNAT: a chain, a map element, a rule that leads on or DNATs.
    A mark for the masquerade and the affinity set's rules do not: the packet is DNATed without them."""
    if not step.line.startswith("rule "):
        return True
    text = _text(step.line)
    return not (text.endswith(f"jump {nftables.MARK_MASQ}") or "@affinity-" in text)


def missing(table: NftTable, steps: list[Step]) -> Step | None:
    """The first line of the packet's path that the kernel's table lacks and the DNAT needs."""
    return next((s for s in steps if decides(s) and not present(table, s.line)), None)


def other_endpoints_missing(table: NftTable, steps: list[Step], gap: Step) -> list[Step]:
    """When ``gap`` is an endpoint's, the first gap of each other endpoint's chain: the packet was sent to one of
    them, and the fix puts back all of them."""
    if not gap.role.startswith(ENDPOINT_ROLE):
        return []
    out: dict[str, Step] = {}
    for s in steps:
        if s.role.startswith(ENDPOINT_ROLE) and s.role != gap.role and decides(s) and not present(table, s.line):
            out.setdefault(s.role, s)
    return list(out.values())


def also_missing(table: NftTable, planned: tuple[str, ...], gap: Step) -> list[str]:
    """The other planned rules of the gap's chain that the kernel lacks (a flushed chain: all of them)."""
    if not gap.line.startswith("rule "):
        return []
    chain = gap.line.split(" ", 2)[1]
    return [line for line in _rules(planned, chain) if line != gap.line and not present(table, line)]


def describe(step: Step) -> str:
    """``the rule `...` of chain X`` / ``chain X`` / ``the element `...` of map M``, in nft's words."""
    kind, name, rest = (step.line.split(" ", 2) + [""])[:3]
    if kind == "chain":
        return f"chain {name}"
    if kind == "rule":
        return f"the rule `{rest.split(' ', 1)[1]}` of chain {name}"
    return f"the element `{rest}` of {'set' if name == 'nodeport-ips' else 'map'} {name}"


def fix(netns: str, step: Step, planned: tuple[str, ...]) -> str:
    """The ``nft`` command that puts back what is missing: one transaction, in the plan's order."""
    kind, name, rest = (step.line.split(" ", 2) + [""])[:3]
    if kind == "element":
        cmd = f"add element {TABLE} {name} {{ {rest} }}"
    else:  # a chain, or a rule: the chain again, whole, in the plan's order
        chain = name
        rules = [line.split(" ", 3)[3] for line in _rules(planned, chain)]
        # a base chain comes back with its hook: without one it is a plain chain nothing jumps to
        base = next((line.split(" ", 2)[2] for line in planned if line.startswith(f"chain {chain} type ")), None)
        head = f"add chain {TABLE} {chain}{f' {{ {base} ; }}' if base else ''}; flush chain {TABLE} {chain}"
        cmd = "; ".join([head] + [f"add rule {TABLE} {chain} {r}" for r in rules])
    return f"ip netns exec {netns} nft {shlex.quote(cmd)}"


def without_dnat(lab: LabMap, table: NftTable | None, ns: str, svc: ServiceFacts, f: Flow,
                 iif: str | None) -> tuple[str, bool]:
    """What becomes of a Service packet node ``ns`` did not DNAT, in nftables mode, and whether the node
    refuses it there."""
    if table is not None and f.dst == svc.ip and f"element cluster-ips {svc.ip}" in table.listing and \
            rejects(table, lab.planned_nft.get(ns, ()), iif):  # the node answers it with an ICMP error
        return (f"cluster-ips-check rejects it in the filter chains: {f.dst} is in set cluster-ips, and kube-proxy "
                "refuses a packet for a ClusterIP that its nat chains did not DNAT (as for a port the Service "
                "does not have)"), True
    return kubeproxy.without_dnat(lab.where(ns).split()[-1], svc, f, iif), False


def no_dnat(lab: LabMap, table: NftTable | None, ns: str, svc: ServiceFacts, f: Flow, iif: str | None,
            unreadable: str | None = None) -> NoDnat:
    """A Service packet node ``ns`` did not DNAT: the line of kube-proxy's table it lacks. ``unreadable``: why the
    table (``table`` None) could not be read, nft's one line."""
    node = lab.where(ns).split()[-1]
    commands = [f"ip netns exec {ns} conntrack -L -p {f.proto} --orig-dst {f.dst}"]
    if not svc.endpoints:
        return no_endpoints(lab, table, ns, svc, f, iif, commands)
    if svc.dropped_on(node, f.src, f.dst, own=iif is None):
        return no_endpoints(lab, table, ns, svc, f, iif, commands, local=True)
    planned = lab.planned_nft.get(ns, ())
    if table is not None and not table.exists and planned:
        return _no_table(lab, ns, node, svc, f, iif, commands)
    if table is None and unreadable is not None:
        return _unread(ns, node, svc, f, iif, commands, unreadable)
    commands.append(f"ip netns exec {ns} nft list table {TABLE}")
    steps = path(planned, svc, f, iif)
    gap = missing(table, steps) if table else None
    if gap is None or table is None:
        return NoDnat(f"no DNAT for {f}", f"{f.endpoint('dst')} is Service {svc.name} but {ns} has no conntrack "
                      "entry for this packet: it was not DNATed here", commands)
    if gap.line.startswith("rule "):  # the chain that lacks it, as nft lists it
        commands.append(list_chain(ns, gap.line.split(" ", 2)[1]))
    what, others = describe(gap), also_missing(table, planned, gap)
    alike = other_endpoints_missing(table, steps, gap)
    then, rejected = without_dnat(lab, table, ns, svc, f, iif)
    lost = lost_targets(table, planned, gap)
    why = (f"{node} did not DNAT this packet for Service {svc.name}: {what} ({gap.role}) is missing from "
           f"{node}'s table {TABLE}{also([_text(line) for line in others])}"
           f"{other_endpoints([f'{describe(s)} ({s.role})' for s in alike])}"
           f"{kubeproxy.targets_too(lost).replace('jumps to', 'leads to')}; "
           f"{'without a DNAT' if alike else 'without them' if lost else 'without it'} {then}")
    lacks = f"{endpoints_lacking([gap.role] + [s.role for s in alike])} are" if alike else f"{what} is"
    put_back = " && ".join(fix(ns, s, planned) for s in [gap, *alike])
    return NoDnat(f"no DNAT for {f}: {lacks} missing", why, commands,
                  lab.repair if lost else put_back, cause=True,
                  facts={"service": svc.name, "missing_rule": gap.line, "missing_chain": gap.line.split()[1]
                         if gap.line.startswith("chain ") else None, "also_missing": others or None,
                         "missing_targets": lost or None,
                         "other_endpoints_missing": [s.line for s in alike] or None,
                         "dropped_here": rejected or None})


def reject_path(planned: tuple[str, ...], svc: ServiceFacts, f: Flow, iif: str | None) -> list[Step]:
    """The planned lines that refuse packet ``f`` for a Service without endpoints (or drop it, without endpoints on
    this node): the jump from filter-forward (filter-output for the node's own) to service-endpoints-check, its
    verdict map, the Service's element in map no-endpoint-services, and reject-chain's rule; for a nodePort
    (addressed to the node itself), filter-input's jump to nodeport-endpoints-check, the node's address in set
    nodeport-ips and the port's element in map no-endpoint-nodeports."""
    if f.dst not in svc.addresses:
        name, key, check, hook = "no-endpoint-nodeports", f"{svc.protocol} . {f.dport} ", "nodeport-endpoints-check", \
            "filter-input"
    else:
        name, key, check = "no-endpoint-services", f"{f.dst} . {svc.protocol} . {f.dport} ", "service-endpoints-check"
        hook = "filter-forward" if iif else "filter-output"
    element = [line for line in planned if line.startswith(f"element {name} {key}")]
    if not element:
        return []
    steps = [Step(line, "the jump to kube-proxy's check for Services without endpoints")
             for line in _rules(planned, hook) if _text(line).endswith(f"jump {check}")]
    steps += [Step(line, f"the lookup in map {name}") for line in _rules(planned, check)]
    if name == "no-endpoint-nodeports":
        steps += [Step(line, "the node's address in set nodeport-ips") for line in planned
                  if line == f"element nodeport-ips {f.dst}"]
    steps += [Step(line, f"Service {svc.name}'s element in map {name}") for line in element]
    if any(line.endswith(f"goto {nftables.REJECT_CHAIN}") for line in element):
        steps += [Step(line, "the rule of reject-chain") for line in _rules(planned, nftables.REJECT_CHAIN)]
    return steps


def no_endpoints(lab: LabMap, table: NftTable | None, ns: str, svc: ServiceFacts, f: Flow, iif: str | None,
                 commands: list[str], local: bool = False) -> NoDnat:
    """A packet for a Service without endpoints: map no-endpoint-services (no-endpoint-nodeports) sends it to
    reject-chain (ICMP port unreachable), when the kernel's table holds the Service's element and the chains on the
    way (``local``: none on this node, for this sender: the element says drop). Without them,
    cluster-ips-check may still reject a ClusterIP's packet; else it follows the node's routes as it is."""
    node = lab.where(ns).split()[-1]
    planned = lab.planned_nft.get(ns, ())
    commands = commands + [f"ip netns exec {ns} nft list table {TABLE}"]
    gap = missing(table, reject_path(planned, svc, f, iif)) if table is not None and table.exists else None
    nodeports = f.dst not in svc.addresses
    verdict_map = "no-endpoint-nodeports" if nodeports else "no-endpoint-services"
    if gap is None or table is None:
        # the Service's element of that map (a nodePort's way also holds the node's address in set nodeport-ips,
        # which only leads to the lookup)
        element = next((st.line for st in reject_path(planned, svc, f, iif)
                        if st.line.startswith(f"element {verdict_map} ")), None)
        quoted = f" (`{element}`)" if element else ""
        if local:
            return NoDnat(f"no DNAT for {f}: {svc.name} has no local endpoints",
                          f"{svc.no_local_words(node, f.dst)}; the map {verdict_map}{quoted} says drop for it",
                          commands, cause=True, facts={"dropped_here": True, "no_local_endpoints": True})
        said = f"Service {svc.name} has no endpoints"
        named = f"map {verdict_map}" + (quoted or f" → {nftables.REJECT_CHAIN}")
        return NoDnat(f"no DNAT for {f}", f"{said}: kube-proxy's map {verdict_map}{quoted} sends the packet to "
                      f"{nftables.REJECT_CHAIN}, which rejects it", commands, cause=True,
                      facts={"dropped_here": True, "rejected": rejected_words(node, said, named)})
    then, rejected = without_dnat(lab, table, ns, svc, f, iif)
    said = svc.no_local_words(node, f.dst) if local else f"Service {svc.name} has no endpoints"
    why = (f"{said}, and {describe(gap)} ({gap.role}) is missing from {node}'s table {TABLE}, so "
           f"{'kube-proxy does not drop' if local else 'reject-chain does not refuse'} this packet; without it {then}")
    head = f"{svc.name} has no local endpoints" if local else f"Service {svc.name} has no endpoints"
    return NoDnat(f"no DNAT for {f}: {head}, and {describe(gap)} is missing", why,
                  commands, fix(ns, gap, planned), cause=True,
                  facts={"service": svc.name, "missing_rule": gap.line, "dropped_here": rejected or None,
                         **({"no_local_endpoints": True} if local else {})})


def _has_chain(lines: frozenset[str] | tuple[str, ...], chain: str) -> bool:
    return any(line == f"chain {chain}" or line.startswith(f"chain {chain} ") for line in lines)


def lost_targets(table: NftTable, planned: tuple[str, ...], gap: Step) -> list[str]:
    """The chains that the rules the fix puts back lead to (jump, goto) and the kernel's table lacks as well (the
    rule `jump services` deleted, then chain services): nft refuses a rule that names a chain that does not exist,
    so the fix cannot put those rules back alone."""
    kind, name = gap.line.split(" ", 2)[:2]
    if kind not in ("rule", "chain"):
        return []
    out: dict[str, None] = {}
    for line in _rules(planned, name):
        target = TARGET.search(_text(line))
        if target and target.group(1) != name and _has_chain(planned, target.group(1)) \
                and not _has_chain(table.listing, target.group(1)):
            out[target.group(1)] = None
    return list(out)


def _no_table(lab: LabMap, ns: str, node: str, svc: ServiceFacts, f: Flow, iif: str | None,
              commands: list[str]) -> NoDnat:
    """The node has no table ip kube-proxy at all: no dispatch, no Service chain, no DNAT, and no filter chain
    that would refuse the packet; `netlab up` writes the whole table again, in one transaction."""
    then = kubeproxy.without_dnat(node, svc, f, iif)
    why = (f"{node} did not DNAT this packet for Service {svc.name}: table {TABLE} (kube-proxy's whole ruleset in "
           f"nftables mode: its chains, the map service-ips and every Service's DNAT) is missing from {node}; "
           f"without it {then}")
    return NoDnat(f"no DNAT for {f}: table {TABLE} is missing", why, commands + [f"ip netns exec {ns} nft list tables"],
                  lab.repair, cause=True,
                  facts={"service": svc.name, "missing_table": TABLE})


def _unread(ns: str, node: str, svc: ServiceFacts, f: Flow, iif: str | None, commands: list[str],
            unreadable: str) -> NoDnat:
    """The node did not DNAT the packet and its table ip kube-proxy could not be read: what it lacks is not known,
    never taken for no table (nor for a table without rules)."""
    why = (f"{node} did not DNAT this packet for Service {svc.name} (it has no conntrack entry with a DNAT), and its "
           f"table {TABLE} could not be read ({unreadable}): trace cannot say which of kube-proxy's rules is missing "
           f"there; without a DNAT {kubeproxy.without_dnat(node, svc, f, iif)}")
    return NoDnat(f"no DNAT for {f}: table {TABLE} could not be read", why,
                  commands + [f"ip netns exec {ns} nft list table {TABLE}"], cause=True,
                  facts={"service": svc.name, "unreadable_table": TABLE, "nft_error": unreadable})


def unread_notes(lab: LabMap, unreadable: dict[str, str]) -> list[str]:
    """A note for each node whose table ip kube-proxy (nftables mode) could not be read (netns -> nft's one line):
    what the trace says of kube-proxy's rules there was not checked against the kernel."""
    return [f"{lab.where(ns).split()[-1]}'s table {TABLE} could not be read ({why}): what this trace says of "
            "kube-proxy's rules there is not checked against the kernel" for ns, why in sorted(unreadable.items())
            if ns in lab.nft_netns]


def rejects(table: NftTable, planned: tuple[str, ...], iif: str | None) -> bool:
    """kube-proxy's filter chains reject a packet for a ClusterIP that its nat chains did not DNAT: the jump
    to cluster-ips-check (from filter-forward for a pod's packet, filter-output for the node's own) and its
    reject rule are both in the kernel's table."""
    hook = "filter-forward" if iif else "filter-output"
    needed = [line for line in _rules(planned, hook) if _text(line).endswith("jump cluster-ips-check")]
    needed += [line for line in _rules(planned, "cluster-ips-check")
               if _text(line).startswith("ip daddr @cluster-ips reject")]
    return bool(needed) and all(present(table, line) for line in needed)


def list_chain(ns: str, chain: str) -> str:
    """``nft list chain ip kube-proxy CHAIN``: one chain of kube-proxy's table as the kernel holds it."""
    return f"ip netns exec {ns} nft list chain {TABLE} {shlex.quote(chain)}"


@dataclass(frozen=True)
class Choice:
    """What sent the packet to its endpoint's chain: the numgen verdict map's elements that lead there, or session
    affinity; and what the counters a user inserted in those chains (kube-proxy writes none) say."""

    chain: str
    rule: str  # the rule's text, as nft lists it
    element: str  # "1 : goto endpoint-...": the first element that leads to the endpoint's chain
    position: int  # 1..of, that element's
    of: int
    affinity: bool = False
    chance: Fraction = field(default=Fraction(1))
    elements: tuple[str, ...] = ()  # every element of the map that leads to the endpoint's chain
    counted: tuple[tuple[str, int | None], ...] = ()  # (chain, packets its counter took during the trace)

    def _share(self) -> str:
        k = len(self.elements) or 1
        return f"{k} in {self.of} overall"

    def _counters(self) -> str:
        if not self.counted:
            return "; no rule of these chains has a counter (kube-proxy writes none in nftables mode)"
        return "".join(f"; the counter in {c} went up by {n} during the trace" if n is not None else
                       f"; {c} has a counter, not read before the packet" for c, n in self.counted)

    def text(self) -> str:
        if self.affinity:
            return (f"`{self.rule}` in {self.chain}: sessionAffinity ClientIP, this client's address was in the "
                    f"endpoint's affinity set before the packet (it went there before){self._counters()}")
        k = len(self.elements) or 1
        which = f"element `{self.element}` leads" if k == 1 else \
            f"elements {', '.join(f'`{e}`' for e in self.elements)} lead"
        return (f"`{self.rule}` in {self.chain}: {which} to the endpoint's chain (numgen draws one of "
                f"0..{self.of - 1} at random; {self._share()}){self._counters()}")

    def short(self) -> str:
        if self.affinity:
            return f"{self.chain}'s affinity rule chose it: this client went there before"
        k = len(self.elements) or 1
        return (f"{self.chain}'s numgen vmap chose it ({k} of its {self.of} elements lead there; "
                f"{self._share()})")

    def commands(self, netns: str) -> list[str]:
        """sessionAffinity's choice: the affinity set, where the kernel keeps the client's address."""
        if not self.affinity:
            return []
        return [f"ip netns exec {netns} nft list set {TABLE} {shlex.quote(self.rule.split()[2][1:])}"]

    def facts(self) -> dict[str, object]:
        moved = [n for _, n in self.counted if n is not None]
        return {"rule": self.rule, "probability": float(self.chance), "chance": str(self.chance),
                "rule_position": self.position, "rules": self.of, "affinity": self.affinity,
                "rule_counted": moved[-1] if moved else None,
                "vmap_element": self.element, "vmap_elements": list(self.elements) or None, "chosen_by": self.text()}


def chosen_by(lab: LabMap, table: NftTable | None, old: Flow, new: Flow, own: bool = False,
              via: str | None = None) -> Choice | None:
    """The element (or affinity rule) that chose the endpoint of a Service's DNAT ``old`` → ``new`` (``own``: the
    node's own packet; ``via``: the endpoint chain that DNATed it, when it is not the endpoint's own; None:
    unknown)."""
    svc = lab.service_for(old.dst, old.dport, old.proto)
    ep = svc.endpoint(new.dst, new.dport) if svc else None
    ep = next((e for e in svc.endpoints if e.sep_chain == via), ep) if svc and via else ep
    if table is None or svc is None or ep is None:
        return None
    return choice(table, svc, ep, old.src, svc.chain_for(old.src, old.dst, own))


def choice(table: NftTable, svc: ServiceFacts, ep: ServiceEndpoint, client: str,
           chain: str | None = None) -> Choice | None:
    """The element of the Service chain's (or ``chain``'s: the node's own endpoints, externalTrafficPolicy
    Local) numgen map that leads to ``ep`` (or its affinity rule)."""
    chain = chain or svc.svc_chain
    rules = table.chain_rules(chain)
    counted = tuple((c, table.counted(c)) for c in (chain, ep.sep_chain) if table.has_counter(c))
    sticky = next((r for r in rules if r.startswith("ip saddr @affinity-") and r.endswith(f"goto {ep.sep_chain}")),
                  None)
    if sticky is not None and table.elements_before is not None:
        name = sticky.split()[2][1:]
        if client in table.elements_before.get(name, ()):
            return Choice(chain, sticky, "", 1, 1, affinity=True, counted=counted)
    for rule in rules:
        m = VMAP.match(rule)
        if not m:
            continue
        elements = [e.strip() for e in m.group(2).split(",")]
        # the live map's elements: each one the draw may give, as many as lead to the endpoint's chain
        leads = [(i, e) for i, e in enumerate(elements) if e.endswith(f"goto {ep.sep_chain}")]
        if leads:
            n = int(m.group(1))
            return Choice(chain, rule, leads[0][1], leads[0][0] + 1, n, chance=Fraction(len(leads), n),
                          elements=tuple(e for _, e in leads), counted=counted)
    return None


def no_localhost_nodeport(svc: str, f: Flow) -> str:
    """Why kube-proxy in nftables mode does not DNAT a node's packet to 127.0.0.1 and a nodePort: its nodePort
    dispatch matches ``ip daddr @nodeport-ips``, the node's own addresses, never the loopback's (localhost nodePorts,
    with route_localnet=1, are iptables mode's only)."""
    return (f"no DNAT for {f}: kube-proxy in nftables mode serves no nodePort on {f.dst} (its nodePort dispatch "
            f"takes only the addresses of set nodeport-ips, the node's own; localhost nodePorts are iptables mode's "
            f"only), so {f.dport} there is no port of Service {svc}: the packet stays on the loopback, for whatever "
            f"listens on it")
