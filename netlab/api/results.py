"""What the Python API returns: frozen dataclasses with the fields of the CLI's ``-o json``.

Each class is built from the very JSON the CLI prints (``from_json``), and
``to_json`` gives that JSON back (both in netlab.api.jsonio), so a test written against ``netlab probe
-o json`` reads the same names as one written against ``Lab.probe()``. Lists
become tuples and nested objects become these classes; free-form parts
(a trace hop's ``facts``, an inspected route) stay mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


# --- lifecycle -------------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did (``netlab up -o json``)."""

    lab: str
    changed: bool
    created_netns: tuple[str, ...]
    removed_netns: tuple[str, ...]
    fixed: tuple[str, ...]  # repairs, and containers restarted or files rewritten
    operations: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class DownResult:
    """What ``down`` removed (``netlab down -o json``)."""

    lab: str
    was_up: bool
    removed_netns: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True)
class Status:
    """The live kernel against the lab's plan (``netlab status -o json``)."""

    lab: str
    ok: bool
    objects: int
    drift: tuple[str, ...]  # one line per difference
    details: tuple[Mapping[str, Any], ...]
    against: str | None = None  # the file (or "<dict>") compared with, when not the lab's own topology

    @property
    def clean(self) -> bool:
        """Nothing differs from the plan."""
        return self.ok


@dataclass(frozen=True)
class LabInfo:
    """One lab that is up (a row of ``netlab list -o json``)."""

    lab: str
    phase: str  # creating | up | failed | deleting | corrupt
    namespaces: int | None
    nodes: int | None
    pods: int | None
    source: str | None  # the topology file, "built-in default", or None when unknown
    error: str | None = None  # a corrupt state: why, and how to take the lab down anyway


# --- probes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbedService:
    """The Service a probe dialed (``service`` of a probe in ``netlab probe -o json``)."""

    name: str
    namespace: str
    port_name: str
    via: str  # ClusterIP | NodePort | LoadBalancer
    type: str
    address: str
    port: int
    service_port: int
    protocol: str
    node: str | None
    endpoints: tuple[str, ...]  # "pod ip:port"
    echo: bool
    session_affinity: str


@dataclass(frozen=True)
class ProbeResult:
    """One probe (an entry of ``probes`` in ``netlab probe -o json``); ``Lab.reach`` returns one."""

    source: str
    destination: str
    protocol: str  # icmp | tcp | udp
    port: int | None
    destination_ip: str
    expected: str  # reachable | unreachable
    observed: str  # reachable | unreachable
    outcome: str  # reply | timeout | refused | unreachable | error | skipped
    detail: str | None
    as_expected: bool
    problems: tuple[str, ...]
    local_address: str | None  # "ip:port" the sender used
    seen_client_address: str | None  # "ip:port" the echo server saw
    server_address: str | None  # "ip:port" the echo server was reached at
    answered_by: str | None  # the pod (or host) whose echo server answered
    ttl: int | None
    rtt_ms: float | None
    reason: str
    section: str | None
    expected_client: tuple[str, ...] | None
    service: ProbedService | None

    @property
    def reachable(self) -> bool:
        """The destination answered."""
        return self.observed == "reachable"

    @property
    def seen_source(self) -> str | None:
        """The client address the destination's echo server saw, without the port (None for ICMP)."""
        return _ip_of(self.seen_client_address)

    @property
    def sent_from(self) -> str | None:
        """The address the source sent from, without the port."""
        return _ip_of(self.local_address)


@dataclass(frozen=True)
class ProbeSummary:
    probes: int
    as_expected: int
    not_as_expected: int
    distributions: int
    distributions_as_expected: int
    text: str


@dataclass(frozen=True)
class PodAddressCheck:
    """Rule 3 from the pod's side: the address on eth0 is the one others reach it at."""

    pod: str
    eth0_address: str | None
    reached_at: str
    ok: bool


@dataclass(frozen=True)
class Distribution:
    """Connections from one client pod to a ClusterIP, counted per endpoint."""

    service: str
    namespace: str
    port_name: str
    protocol: str
    port: int
    cluster_ip: str
    client: str
    connections: int
    session_affinity: str
    endpoints: Mapping[str, int]  # endpoint pod -> connections it served
    other_answers: Mapping[str, int]
    no_reply: Mapping[str, int]
    min_per_endpoint: float | None
    as_expected: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ProbeReport:
    """The connectivity matrix and the three rules (``netlab probe -o json``)."""

    lab: str
    ok: bool
    summary: ProbeSummary
    timeout_s: float
    elapsed_s: float
    probes: tuple[ProbeResult, ...]
    pods: tuple[PodAddressCheck, ...]
    distributions: tuple[Distribution, ...]
    not_probed: tuple[str, ...]
    conntrack: Mapping[str, Any]
    neighbour_table: Mapping[str, Any]

    @property
    def failures(self) -> tuple[str, ...]:
        """Every check that is not as expected, one line each (empty when ``ok``)."""
        out = [f"{p.source} -> {p.destination} {p.protocol}{'' if p.port is None else '/' + str(p.port)}: "
               f"{'; '.join(p.problems)}" for p in self.probes if not p.as_expected]
        out += [f"{c.pod}: eth0 has {c.eth0_address or 'no address'}, others reach it at {c.reached_at}"
                for c in self.pods if not c.ok]
        out += [f"svc/{d.service} distribution from {d.client}: {'; '.join(d.problems)}"
                for d in self.distributions if not d.as_expected]
        return tuple(out)


# --- trace -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceEnd:
    """One end of a trace: a pod, node, internet host, Service or bare address (the JSON
    leaves out the fields that do not apply, as ``netlab trace -o json`` does)."""

    __json_omit_none__ = True

    name: str
    kind: str
    ip: str
    netns: str | None = None
    port: int | None = None
    proto: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class TraceLoss:
    """Where a packet disappeared, and why."""

    hop: int | None
    netns: str | None
    device: str | None
    reason: str | None
    fix: str | None


@dataclass(frozen=True)
class ServiceEndpoint:
    """The endpoint a Service's DNAT picked for the traced packet."""

    service: str | None = None
    endpoint: str | None = None
    endpoint_ip: str | None = None
    endpoint_port: int | None = None
    svc_chain: str | None = None
    sep_chain: str | None = None
    # kube-proxy's rule in svc_chain that chose the endpoint (iptables-save's text), the probability written
    # in it, the overall chance ("1/2"), its position among the chain's `rules` endpoint rules, whether
    # sessionAffinity's recent match chose it, how many packets its counter took during the trace, and
    # all of that in words
    rule: str | None = None
    probability: float | None = None
    chance: str | None = None
    rule_position: int | None = None
    rules: int | None = None
    affinity: bool | None = None
    rule_counted: int | None = None
    chosen_by: str | None = None
    vmap_element: str | None = None  # nftables mode: the numgen vmap's element that chose it ("0 : goto endpoint-...")

    @property
    def pod(self) -> str | None:
        """The endpoint pod's name."""
        return self.endpoint


@dataclass(frozen=True)
class TraceHop:
    """One row of a trace: where, what the kernel decided there, and whether the packet was seen."""

    netns: str
    where: str
    device: str
    kind: str
    decision: str
    commands: tuple[str, ...]
    problem: str | None
    fix: str | None
    facts: Mapping[str, Any]
    direction: str
    seen: bool | None
    evidence: str | None
    index: int
    observe: Mapping[str, Any] | None = None
    cause: bool = False  # this hop's problem dooms the packet, although it travels on (a Service not DNATed)


@dataclass(frozen=True)
class Trace:
    """The life of one packet (``netlab trace -o json``)."""

    lab: str
    src: TraceEnd
    dst: TraceEnd
    proto: str
    port: int | None
    marker: str
    delivered: bool
    reply_received: bool
    reply: str | None
    lost: TraceLoss | None
    reply_lost: TraceLoss | None
    endpoint: ServiceEndpoint | None
    icmp_errors: tuple[Mapping[str, Any], ...]
    arp: tuple[Mapping[str, Any], ...]
    hops: tuple[TraceHop, ...]
    reply_hops: tuple[TraceHop, ...]
    captured_netns: tuple[str, ...]
    packets: int
    pcap: str | None
    dns: Mapping[str, Any] | None = None  # to port 53: the question asked (name, id) and the answer
    # NetworkPolicy verdicts, one per destination pod judged: allowed, text, and for a drop node, chain, counted
    policy: tuple[Mapping[str, Any], ...] = ()


# --- what a lab holds (netlab get, inspect) ---------------------------------------------


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    state: str  # running | stopped | exited | not started | failed
    pid: int | None
    command: tuple[str, ...] | None  # None: netlab's echo server
    ports: tuple[str, ...]  # "8080/TCP"
    exit_code: int | None = None  # exited: its code (128 + signal when killed), when the kernel kept it
    restarts: int = 0  # how often up (or up --watch) started it again

    @property
    def status(self) -> str:
        """Its state as ``get pods`` words it: an exited container with a known code is ``completed`` (0) or
        ``error`` (anything else), as the kubelet's reasons Completed and Error."""
        if self.state != "exited" or self.exit_code is None:
            return self.state
        return "completed" if self.exit_code == 0 else "error"


@dataclass(frozen=True)
class PodInfo:
    """A pod (``netlab get pods -o json``)."""

    name: str
    node: str
    ip: str
    netns: str
    mac: str
    labels: Mapping[str, str]
    containers: tuple[ContainerInfo, ...]
    added: bool = False  # made by netlab, not in the topology (the cluster DNS pod kube-dns)
    namespace: str = "default"  # the pod's Kubernetes namespace (netns is its network namespace)
    created: str | None = None  # when its network namespace was made (UTC, RFC 3339: creationTimestamp)

    @property
    def ready(self) -> str:
        """Running containers out of all, as kubectl's READY column: ``1/1``."""
        return f"{sum(c.state == 'running' for c in self.containers)}/{len(self.containers)}"

    @property
    def restarts(self) -> int:
        """Its containers' restarts, together, as kubectl's RESTARTS column."""
        return sum(c.restarts for c in self.containers)


@dataclass(frozen=True)
class NodeInfo:
    """A node (``netlab get nodes -o json``)."""

    name: str
    ip: str
    pod_cidr: str
    netns: str
    cni0: str  # the pods' gateway: cni0's address
    vtep: str | None  # flannel.1's address in vxlan mode
    pods: tuple[str, ...]
    created: str | None = None  # when its network namespace was made (UTC, RFC 3339: creationTimestamp)


@dataclass(frozen=True)
class ServicePortInfo:
    name: str | None
    port: int
    target_port: int
    protocol: str
    node_port: int | None
    endpoints: tuple[str, ...]  # "pod ip:port"


@dataclass(frozen=True)
class ServiceInfo:
    """A Service (``netlab get services -o json``)."""

    name: str
    namespace: str
    type: str
    cluster_ip: str
    external_ip: str | None
    session_affinity: str
    selector: Mapping[str, str]
    ports: tuple[ServicePortInfo, ...]
    dns: str  # <name>.<namespace>.svc.cluster.local
    added: bool = False  # made by netlab (the cluster DNS Service kube-system/kube-dns)


@dataclass(frozen=True)
class NftTableInfo:
    """One nftables table of the lab in a namespace, as ``netlab inspect`` shows it (kube-proxy's ``ip
    kube-proxy`` on a node in nftables mode)."""

    family: str  # ip
    name: str  # kube-proxy
    listing: tuple[str, ...]  # `nft list table FAMILY NAME`, line by line as nft prints it (counters in place)
    # From `nft -j list table`, in the kernel's order. A chain: name, and for a base chain type, hook,
    # priority, policy (else None); rules: [{rule, packets, bytes}], the rule in kube-proxy's words (as
    # `netlab status` and `netlab plan` print it), packets/bytes of its `counter` (None: the rule has none,
    # as no rule kube-proxy writes does).
    chains: tuple[Mapping[str, Any], ...]
    # Sets and maps: name, kind (set | map), type ("ipv4_addr . inet_proto . inet_service : verdict"),
    # flags, timeout (seconds or None), elements ("10.96.0.20 . tcp . 80 : goto service-...").
    sets: tuple[Mapping[str, Any], ...]

    def chain(self, name: str) -> Mapping[str, Any] | None:
        """The chain of that name, or None."""
        return next((c for c in self.chains if c["name"] == name), None)

    def elements(self, name: str) -> tuple[str, ...]:
        """The elements of the set or map of that name (none when there is no such set)."""
        return next((tuple(s["elements"]) for s in self.sets if s["name"] == name), ())


@dataclass(frozen=True)
class Inspection:
    """What ``netlab inspect -o json`` shows for one namespace; sections not asked for are None."""

    lab: str
    name: str
    netns: str
    what: str
    links: tuple[Mapping[str, Any], ...] | None = None
    addresses: tuple[Mapping[str, Any], ...] | None = None
    routes: tuple[Mapping[str, Any], ...] | None = None
    neighbours: tuple[Mapping[str, Any], ...] | None = None
    fdb: tuple[Mapping[str, Any], ...] | None = None
    bridge_ports: tuple[Mapping[str, Any], ...] | None = None
    sysctls: Mapping[str, str | None] | None = None
    iptables: Mapping[str, tuple[str, ...]] | None = None
    # the lab's nftables tables here, keyed "ip kube-proxy"; {}: none (iptables mode, a pod)
    nftables: Mapping[str, NftTableInfo] | None = None
    conntrack: Mapping[str, Any] | None = None
    files: Mapping[str, Mapping[str, str | None]] | None = None  # a node's Flannel files: path -> kept, content
    cni: Mapping[str, Any] | None = None  # a CNI pod's cached result (network.cni: reference or a conflist)
    # sections asked for that the tools could not read (iptables, nftables), with why; they are empty
    unreadable: Mapping[str, str] | None = None


def _ip_of(addr: str | None) -> str | None:
    """The address of "ip:port"."""
    return addr.rsplit(":", 1)[0] if addr else None
