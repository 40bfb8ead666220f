"""What NetworkPolicies allow, from their semantics alone: the independent truth table.

This module never looks at the iptables rules netlab generates
(:mod:`netlab.plan.policy`); it reads the policies the way the Kubernetes API
documents them, so comparing its answer with real traffic tests the rules.

For a flow from S to D (protocol, destination port after any Service DNAT):

* D's **ingress** is isolated when some policy of D's namespace selects D and
  has ``Ingress`` in its policyTypes; then the flow needs at least one ingress
  rule of one of those policies that matches S and the port (policies add up,
  their union allows). Not isolated: allowed.
* S's **egress** likewise, with egress rules matching D and the port. S and D
  must both allow: a pod's egress and the other's ingress are judged apart.
* A rule with ``from``/``to`` missing or empty matches every peer (pods and
  any address); with ``ports`` missing or empty, every port and protocol
  (ICMP too). ``ingress: []`` or a missing ``ingress`` on an Ingress policy
  allows nothing.
* A peer with ``podSelector`` alone: pods of the *policy's* namespace; with
  ``namespaceSelector`` alone: every pod of matching namespaces; with both:
  matching pods of matching namespaces (AND in one peer, OR across peers).
  ``ipBlock``: the peer's address is in ``cidr`` and in no ``except``; an IPv6
  block holds no address of the (IPv4) lab, so it matches no peer.
* A named port is looked up in the containerPorts of the pod that serves it
  (D), with the port's protocol; a flow to something that is not a pod never
  matches a named port.
* A pod reaching itself is always allowed: "Pods cannot currently block
  localhost access, nor do they have the ability to block access from their
  resident node" (the Network Policies page of the Kubernetes docs, what you
  can't do with network policies). To its own
  address the packet never leaves its namespace (loopback, the upstream suite's
  ``AllowLoopback``). Through a Service (its ClusterIP, or a nodePort of its own
  node, DNATed back to it: hairpin) it does pass its node's FORWARD, and is
  still not judged, as real agents do: Cilium skips policy for the
  service-loopback case on purpose ("we want to avoid the user to have to
  explicitly allow traffic to+from itself", cilium PRs 15709 and 27798), and
  with iptables agents kube-proxy masquerades the hairpin connection to the
  node's bridge address, so the pod sees it come from its own node, whose
  traffic is always allowed. plan/policy.py lets it through at the top of
  NETPOL-FORWARD (the masquerade comes later, in POSTROUTING).
* Traffic from the node a pod runs on is always allowed (the kubelet's
  probes; it never crosses the node's FORWARD path); another node is an
  address, which only a rule without peers or an ``ipBlock`` matches.
  That exception is for the pod's ingress only: a pod's egress to a node,
  its own included, is judged like egress to any address (the kernel
  judges a packet to the pod's own node in INPUT, see plan/policy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Iterable

from netlab.model.fields import NAMESPACE_NAME_LABEL
from netlab.model.location import Loc
from netlab.model.places import Key, Note, Places
from netlab.model.policy_spec import LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo

PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")


@dataclass(frozen=True)
class PodView:
    """What policies see of a pod: where it lives, its labels, its named ports."""

    name: str
    namespace: str
    ip: IPv4Address
    labels: tuple[tuple[str, str], ...]
    node: str = ""
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, PROTOCOL, port)

    def port_named(self, name: str, protocol: str) -> int | None:
        for pname, proto, port in self.named_ports:
            if pname == name and proto == protocol:
                return port
        return None


@dataclass(frozen=True)
class Peer:
    """One end of a flow: a pod, or only an address (a node, an internet host)."""

    ip: IPv4Address
    pod: PodView | None = None
    node: str | None = None  # a node's own address: the node it is

    @property
    def label(self) -> str:
        if self.pod is not None:
            return f"{self.pod.namespace}/{self.pod.name}"
        return f"node {self.node}" if self.node else str(self.ip)


@dataclass(frozen=True)
class Allowance:
    """The rule that let a flow through."""

    policy: str  # namespace/name
    direction: str  # ingress | egress
    rule: int  # 1-based, as people count
    peer: str  # "any peer", "peer 1 namespaceSelector ns=y", ...
    port: str  # "any port", "port 80/TCP"

    def describe(self) -> str:
        return f"allowed by policy {self.policy}, {self.direction} rule {self.rule}, {self.peer}, {self.port}"


@dataclass(frozen=True)
class Decision:
    """One direction (a pod's ingress or egress) for one flow."""

    direction: str
    pod: str  # namespace/name of the judged pod
    allowed: bool
    isolating: tuple[str, ...] = ()  # policies that select the pod for this direction
    by: Allowance | None = None
    note: str = ""  # why, when no policy was consulted

    def describe(self) -> str:
        if self.by is not None:
            return self.by.describe()
        if not self.isolating:
            return self.note or f"no policy selects {self.pod} for {self.direction}: allowed"
        names = ", ".join(self.isolating)
        word = "policy" if len(self.isolating) == 1 else "policies"
        return f"denied by {word} {names} (no {self.direction} rule allows it for pod {self.pod})"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress: Decision
    ingress: Decision

    def describe(self) -> str:
        if not self.egress.allowed:
            return self.egress.describe()
        if not self.ingress.allowed:
            return self.ingress.describe()
        parts = [d.describe() for d in (self.egress, self.ingress) if d.by is not None]
        return "; ".join(parts) or self.ingress.describe()


def selector_matches(sel: LabelSelector, labels: dict[str, str]) -> bool:
    """matchLabels AND every matchExpressions requirement (an empty selector matches all)."""
    for key, value in sel.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in sel.match_expressions:
        has = req.key in labels
        if req.operator == "In" and not (has and labels[req.key] in (req.values or [])):
            return False
        if req.operator == "NotIn" and has and labels[req.key] in (req.values or []):
            return False
        if req.operator == "Exists" and not has:
            return False
        if req.operator == "DoesNotExist" and has:
            return False
    return True


def describe_selector(sel: LabelSelector) -> str:
    parts = [f"{k}={v}" for k, v in sel.match_labels.items()]
    for r in sel.match_expressions:
        vals = ",".join(r.values or [])
        parts.append({"In": f"{r.key} in ({vals})", "NotIn": f"{r.key} notin ({vals})",
                      "Exists": r.key, "DoesNotExist": f"!{r.key}"}[r.operator])
    return " ".join(parts) or "{} (all)"


def describe_peer(peer: NetworkPolicyPeer) -> str:
    out = []
    if peer.namespace_selector is not None:
        out.append(f"namespaceSelector {describe_selector(peer.namespace_selector)}")
    if peer.pod_selector is not None:
        out.append(f"podSelector {describe_selector(peer.pod_selector)}")
    if peer.ip_block is not None:
        exc = f" except {','.join(map(str, peer.ip_block.except_))}" if peer.ip_block.except_ else ""
        out.append(f"ipBlock {peer.ip_block.cidr}{exc}")
    return " and ".join(out)


def describe_port(p: NetworkPolicyPort) -> str:
    if p.port is None:
        return f"any {p.protocol} port"
    if p.end_port is not None:
        return f"ports {p.port}-{p.end_port}/{p.protocol}"
    return f"port {p.port}/{p.protocol}"


@dataclass
class PolicySet:
    """The policies of a lab with the namespaces and pods they are judged against."""

    policies: list[NetworkPolicy]
    namespace_labels: dict[str, dict[str, str]]
    pods: list[PodView] = field(default_factory=list)
    # The policies that isolate a pod, by (namespace, labels, direction): all a selection looks at. A probe run
    # asks it twice per pair of pods; asking every policy each time made a matrix pairs x policies long.
    _isolating: dict[tuple[str, tuple[tuple[str, str], ...], str], list[NetworkPolicy]] = field(
        default_factory=dict, repr=False, compare=False)

    # --- who a policy applies to and who a peer is --------------------------------

    def ns_labels(self, ns: str) -> dict[str, str]:
        return self.namespace_labels.get(ns) or {NAMESPACE_NAME_LABEL: ns}

    def selects(self, pol: NetworkPolicy, pod: PodView) -> bool:
        return pol.namespace == pod.namespace and selector_matches(pol.spec.pod_selector, dict(pod.labels))

    def selected_pods(self, pol: NetworkPolicy) -> list[PodView]:
        return [p for p in self.pods if self.selects(pol, p)]

    def isolating(self, pod: PodView, direction: str) -> list[NetworkPolicy]:
        key = (pod.namespace, pod.labels, direction)
        found = self._isolating.get(key)
        if found is None:
            kind = "Ingress" if direction == "ingress" else "Egress"
            found = self._isolating[key] = [p for p in self.policies if kind in p.spec.types and self.selects(p, pod)]
        return found

    def peer_matches(self, pol: NetworkPolicy, peer: NetworkPolicyPeer, other: Peer) -> bool:
        if peer.ip_block is not None:
            blk = peer.ip_block
            return other.ip in blk.cidr and not any(other.ip in net for net in blk.except_)
        if other.pod is None:
            return False  # selectors pick pods only
        pod = other.pod
        if peer.namespace_selector is not None:
            if not selector_matches(peer.namespace_selector, self.ns_labels(pod.namespace)):
                return False
        elif pod.namespace != pol.namespace:
            return False
        return peer.pod_selector is None or selector_matches(peer.pod_selector, dict(pod.labels))

    @staticmethod
    def port_matches(p: NetworkPolicyPort, protocol: str, port: int | None, server: PodView | None) -> bool:
        if protocol != p.protocol or port is None:
            return False
        if p.port is None:
            return True
        if isinstance(p.port, str):
            return server is not None and server.port_named(p.port, protocol) == port
        if p.end_port is not None:
            return p.port <= port <= p.end_port
        return p.port == port

    # --- verdicts -------------------------------------------------------------------

    def decide(self, pod: PodView, direction: str, other: Peer, protocol: str, port: int | None,
               server: PodView | None) -> Decision:
        """One pod's ingress (``other`` is the source) or egress (``other`` is the destination)."""
        who = f"{pod.namespace}/{pod.name}"
        pols = self.isolating(pod, direction)
        if not pols:
            return Decision(direction, who, True)
        names = tuple(f"{p.namespace}/{p.name}" for p in pols)
        for pol in pols:
            rules = (pol.spec.ingress if direction == "ingress" else pol.spec.egress) or []
            for i, rule in enumerate(rules, 1):
                peers = rule.from_ if direction == "ingress" else rule.to
                if peers:
                    hit = next((j for j, pr in enumerate(peers, 1) if self.peer_matches(pol, pr, other)), None)
                    if hit is None:
                        continue
                    peer_text = f"peer {hit} {describe_peer(peers[hit - 1])}"
                else:
                    peer_text = "any peer"
                if rule.ports:
                    ok = next((pt for pt in rule.ports if self.port_matches(pt, protocol, port, server)), None)
                    if ok is None:
                        continue
                    port_text = describe_port(ok)
                else:
                    port_text = "any port"
                return Decision(direction, who, True, names,
                                Allowance(f"{pol.namespace}/{pol.name}", direction, i, peer_text, port_text))
        return Decision(direction, who, False, names)

    def flow(self, src: Peer, dst: Peer, protocol: str, port: int | None, via_service: bool = False) -> Verdict:
        """May ``src`` reach ``dst`` on protocol/port (the port the server sees)?"""
        protocol = protocol.upper()
        if src.pod is not None and dst.pod is not None and src.pod == dst.pod:
            # A pod reaching itself is not judged, through a Service neither (module docstring).
            how = "through a Service (hairpin)" if via_service else "over loopback"
            note = f"{src.label} reaches itself {how}: never judged"
            return Verdict(True, Decision("egress", src.label, True, note=note),
                           Decision("ingress", dst.label, True, note=note))
        if src.pod is not None:
            egress = self.decide(src.pod, "egress", dst, protocol, port, dst.pod)
        else:
            egress = Decision("egress", src.label, True, note=f"{src.label} is not a pod: no egress policy applies")
        if dst.pod is None:
            ingress = Decision("ingress", dst.label, True, note=f"{dst.label} is not a pod: no ingress policy applies")
        elif src.node is not None and src.node == dst.pod.node:
            ingress = Decision("ingress", dst.label, True,
                               note=f"{src.label} is {dst.label}'s own node: always allowed (kubelet probes)")
        else:
            ingress = self.decide(dst.pod, "ingress", src, protocol, port, dst.pod)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    def pod(self, name: str) -> PodView:
        return next(p for p in self.pods if p.name == name)


def policy_notes(policies: Iterable[NetworkPolicy], places: Places | None = None) -> list[Note]:
    """One line per IPv6 ipBlock: valid (the API server takes it in any cluster) and matching nothing in an IPv4
    lab, so ``validate`` and ``up`` say so, as notes, and go on. A rule whose only peers they are allows nothing,
    and a policy whose only rules they are isolates its pods all the same. And one per block written with host
    bits set: read as its network, as the API server reads it (with a warning of its own). Each at its field when
    ``places`` knows where the policy was written."""
    places = places if places is not None else Places()
    out = []
    for pol in policies:
        key: Key = ("NetworkPolicy", pol.namespace, pol.name)
        for direction, rules in (("ingress", pol.spec.ingress), ("egress", pol.spec.egress)):
            for i, rule in enumerate(rules or [], 1):
                peers = (rule.from_ if direction == "ingress" else rule.to) or []
                for j, peer in enumerate(peers, 1):
                    if peer.ip_block is None:
                        continue
                    where = f"network policy {pol.namespace}/{pol.name} {direction} rule {i} peer {j}"
                    block: Loc = ("spec", direction, i - 1, "from" if direction == "ingress" else "to", j - 1,
                                  "ipBlock")
                    for at, field_name, net in [(("cidr",), "cidr", peer.ip_block.cidr),
                                                *((("except", k), f"except[{k}]", e)
                                                  for k, e in enumerate(peer.ip_block.except_))]:
                        written = getattr(net, "written", "")
                        if written:
                            host = f"{written.split('/')[0]}/{net.max_prefixlen}"
                            out.append(places.note(key, block + at, f"{where}: ipBlock.{field_name} {written} has host "
                                                                    f"bits set; read as {net}, as the API server reads "
                                                                    f"it (it warns: ambiguous, {net} or {host}?)"))
                    if peer.ip_block.ipv6:
                        out.append(places.note(key, block + ("cidr",),
                                               f"{where}: ipBlock {peer.ip_block.cidr} is IPv6, which matches nothing "
                                               "in this IPv4 lab (Kubernetes accepts it; the CNI writes no rule for "
                                               "it)"))
    return out


def named_ports(pod: object) -> tuple[tuple[str, str, int], ...]:
    out = []
    for c in getattr(pod, "containers", []):
        for p in c.ports:
            if p.name:
                out.append((p.name, p.protocol, p.container_port))
    return tuple(out)


def namespace_labels(namespaces: Iterable[object], used: Iterable[str]) -> dict[str, dict[str, str]]:
    """Every namespace's labels, with the name label the API server adds to each."""
    out: dict[str, dict[str, str]] = {ns: {NAMESPACE_NAME_LABEL: ns} for ns in used}
    for ns in namespaces:
        out[ns.name] = {**dict(ns.labels), NAMESPACE_NAME_LABEL: ns.name}  # type: ignore[attr-defined]
    return out


def policy_set(lab: "Lab") -> PolicySet:
    """The policy view of a resolved lab."""
    topo = lab.topo
    pods = [PodView(p.name, p.spec.namespace, p.ip, tuple(sorted(p.spec.labels.items())), p.node,
                    named_ports(p.spec)) for p in lab.pods]
    used = {p.namespace for p in pods} | {"default"}
    return PolicySet(list(topo.network_policies), namespace_labels(topo.namespaces, used), pods)


def node_address(lab: "Lab", node: str) -> IPv4Address:
    """The source address a node's packet to a pod elsewhere carries: flannel.1's in
    VXLAN mode (the route to a remote pod block goes out of it), eth0's with host-gw."""
    info = lab.node(node)
    return info.vtep_ip if lab.mode == "vxlan" else info.ip


def nodeport_source(lab: "Lab", receiver: str, endpoint: PodView, arrival: Peer | None) -> Peer:
    """The source the endpoint's ingress is judged against for a packet to ``receiver``'s nodePort (a
    LoadBalancer's balancer hands its packets to one) that kube-proxy DNATs to ``endpoint``.

    ``receiver`` DNATs it in PREROUTING (OUTPUT for its own packet) and marks it for masquerade (KUBE-EXT,
    externalTrafficPolicy Cluster); MASQUERADE comes in POSTROUTING, after FORWARD, where the policies' chains
    hang (plan/policy.py). So an endpoint on another node is judged there with ``receiver``'s address towards
    it (:func:`node_address`); one on ``receiver`` itself before the masquerade, with the source the packet had
    when it reached ``receiver`` (``arrival``); and ``receiver``'s own packet to its own pod (``arrival`` None)
    never passes FORWARD (OUTPUT, then cni0): it is the node itself, which the own-node rule lets through.
    externalTrafficPolicy Local gives an outside client only ``receiver``'s own endpoints, never masqueraded:
    the same ``arrival``."""
    if endpoint.node != receiver:
        return Peer(node_address(lab, receiver), None, receiver)
    if arrival is None:
        return Peer(lab.node(receiver).ip, None, receiver)
    return arrival


def lab_peer(lab: "Lab", ps: PolicySet, name: str) -> Peer | None:
    """A pod or node of the lab as a policy peer as the *source* of a flow (None for other names): a node is the
    address its packets to pods carry (:func:`node_address`)."""
    for p in ps.pods:
        if p.name == name:
            return Peer(p.ip, p)
    for n in lab.nodes:
        if n.name == name:
            return Peer(node_address(lab, n.name), None, n.name)
    return None


def lab_destination(lab: "Lab", ps: PolicySet, name: str) -> Peer | None:
    """A pod or node of the lab as the *destination* of a flow sent to it by name (None for other names): a node
    is its own IP, eth0's, the address probe, trace and reach send to and the kernel's rules match (``-d``), not
    flannel.1's, the one it sends from. A flow to another of its addresses is judged with that address."""
    for n in lab.nodes:
        if n.name == name:
            return Peer(n.ip, None, n.name)
    return lab_peer(lab, ps, name)


def ping_pair(lab: "Lab", budget: int = 2000) -> "tuple[PodInfo, PodInfo] | None":
    """Two pods for ``up``'s try-line (``ip netns exec A ping -c1 B``): the first pod and one on another node, as
    the Kubernetes network model promises; under NetworkPolicies the first pair in that order whose ICMP they
    allow, so the line never suggests what the lab's own policies refuse; None when none of the first ``budget``
    pairs is allowed (a big lab under default-deny: no line). Pods of ``lab.terminal`` are left out (the caller's:
    a terminal CNI pod whose sandbox's namespace went with its DEL has nothing to ping from)."""
    pods = [p for p in lab.pods if p.name not in lab.terminal]
    if not pods:
        return None
    first = pods[0]
    if not lab.topo.network_policies:
        return first, next((p for p in pods if p.node != first.node), None) or pods[-1]
    if len(pods) == 1:
        return first, first  # itself: never judged
    ps = policy_set(lab)
    views = {v.name: v for v in ps.pods}
    for src in pods:
        others = [p for p in pods if p.node != src.node] + [p for p in pods if p.node == src.node and p is not src]
        for dst in others:
            budget -= 1
            if budget < 0:
                return None
            s, d = views[src.name], views[dst.name]
            if ps.flow(Peer(s.ip, s), Peer(d.ip, d), "ICMP", None).allowed:
                return src, dst
    return None
