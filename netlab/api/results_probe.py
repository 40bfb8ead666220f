"""The results of ``probe`` and ``Lab.reach`` (netlab.api.results says what they are)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProbedEndpoint:
    """A pod behind the Service a probe dialed, at the port its traffic is DNATed to."""

    pod: str
    ip: str
    port: int


@dataclass(frozen=True)
class ProbedService:
    """The Service a probe dialed (``service`` of a probe in ``netlab probe -o json``)."""

    name: str
    namespace: str
    port_name: str
    via: str  # ClusterIP | NodePort | LoadBalancer | ExternalIP
    type: str
    address: str
    port: int
    service_port: int
    protocol: str
    node: str | None
    endpoints: tuple[ProbedEndpoint, ...]
    echo: bool
    session_affinity: str


@dataclass(frozen=True)
class DnsAnswer:
    """What the cluster DNS answered a probe's question."""

    rcode: str  # NOERROR | NXDOMAIN | SERVFAIL | ...
    a: tuple[str, ...]  # the answer's A records


@dataclass(frozen=True)
class ProbedDns:
    """The DNS question a probe of the cluster DNS's 53/UDP asked (``dns`` of a probe in ``netlab probe -o
    json``), the address its answer must hold, and the answer (None: no answer came)."""

    question: str  # "A kube-dns.kube-system.svc.cluster.local"
    expected_a: str  # the DNS Service's ClusterIP
    answer: DnsAnswer | None


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
    dns: ProbedDns | None

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
    as_expected: int  # of the probes
    not_as_expected: int  # every check that is not: len(ProbeReport.failures), the text's and JUnit's count
    distributions: int
    distributions_as_expected: int
    text: str


@dataclass(frozen=True)
class PodAddressCheck:
    """Rule 3 from the pod's side: the address on eth0 is the one others reach it at."""

    __json_aliases__ = {"pod": "name"}  # deprecated (docs/json.md)

    name: str
    eth0_address: str | None
    reached_at: str
    ok: bool

    @property
    def pod(self) -> str:
        """Deprecated: ``name`` (docs/json.md)."""
        return self.name


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
    failed: Mapping[str, int]  # how the other connections failed: "refused", "timeout", ... -> connections
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
    hints: tuple[str, ...] = ()  # what the kernel says of the failures: a node whose bridge skips iptables
    # What the run was told before it probed, one line each, as `netlab: note:` says it: a topology FILE whose
    # NetworkPolicies judge flows otherwise than those the running lab runs (probe judges the file's)
    notes: tuple[str, ...] = ()
    # A lab whose `up` or `down` ended before it finished (killed): list's line, as Status.error, which the CLI's
    # probe prints first (realize/interrupted.stalled): what the probes found is that run's work half done.
    error: str | None = None

    @property
    def failures(self) -> tuple[str, ...]:
        """Every check that is not as expected, one line each (empty when ``ok``)."""
        out = [f"{p.source} -> {p.destination} {p.protocol}{'' if p.port is None else '/' + str(p.port)}: "
               f"{'; '.join(p.problems)}" for p in self.probes if not p.as_expected]
        out += [f"{c.name}: eth0 has {c.eth0_address or 'no address'}, others reach it at {c.reached_at}"
                for c in self.pods if not c.ok]
        out += [f"svc/{d.service} distribution from {d.client}: {'; '.join(d.problems)}"
                for d in self.distributions if not d.as_expected]
        # a pod's, node's or host's namespace deleted; the internet's gateway's or load balancer's
        out += [n.split(m, 1)[1] for n in self.not_probed for m in [next((m for m in MARKS if m in n), "")] if m]
        return tuple(out)


DELETED = ": its flows not probed: "  # probe's note of a pod whose namespace was deleted (probe/runner.DELETED)
# of the internet's gateway and load balancer, whose namespace was deleted (probe/runner.PARTS)
MARKS = (DELETED, ", the internet's gateway: ", ", the load balancer: ")


def _ip_of(addr: str | None) -> str | None:
    """The address of "ip:port"."""
    return addr.rsplit(":", 1)[0] if addr else None
