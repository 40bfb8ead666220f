"""What a Service probe dials (a Service port's ClusterIP, NodePort, LoadBalancer IP or externalIP), the endpoints
behind it, and the plan of a lab's Service probes and distribution checks (built by :mod:`netlab.probe.services`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from netlab.model import naming
from netlab.probe.matrix import Probe, SeenRule, echo_ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.plan.services import ServicePortInfo


@dataclass(frozen=True)
class ServiceTarget:
    """What a Service probe dials, and what stands behind it."""

    service: str
    namespace: str
    port_name: str  # namespace/name[:port], kube-proxy's ServicePortName
    kind: str  # ClusterIP | NodePort | LoadBalancer | ExternalIP: the path this probe takes
    type: str  # the Service's type
    address: str  # the IP dialed
    port: int  # the port dialed (the node port for NodePort)
    service_port: int
    protocol: str  # tcp | udp
    node: str | None  # NodePort: the node whose IP is dialed
    endpoints: tuple[tuple[str, str, int], ...]  # (pod, ip, targetPort)
    echo: bool  # every endpoint serves targetPort with netlab's echo server
    affinity: bool
    silent: bool = False  # nothing listens on any endpoint's targetPort (echo servers elsewhere only)

    @property
    def label(self) -> str:
        where = f"NodePort on {self.node}" if self.kind == "NodePort" else self.kind
        return f"svc/{self.service} {self.address}:{self.port}/{self.protocol} ({where})"

    def to_json(self) -> dict:
        return {"name": self.service, "namespace": self.namespace, "port_name": self.port_name, "via": self.kind,
                "type": self.type, "address": self.address, "port": self.port, "service_port": self.service_port,
                "protocol": self.protocol, "node": self.node,
                "endpoints": [{"pod": pod, "ip": ip, "port": port} for pod, ip, port in self.endpoints],
                "echo": self.echo, "session_affinity": "ClientIP" if self.affinity else "None"}


def section(t: ServiceTarget, node_port: int | None = None, note: str = "") -> str:
    if t.kind == "ClusterIP":
        what = f"ClusterIP {t.address}"
    elif t.kind == "NodePort":
        what = f"NodePort {node_port or t.port} on every node"
    elif t.kind == "ExternalIP":
        what = f"externalIP {t.address}:{t.port}"
    else:
        what = f"LoadBalancer {t.address}:{t.port}"
    tail = "; no endpoints: must be refused" if not t.endpoints else \
        "; nothing listens on targetPort: must be refused" if t.silent else ""
    return f"svc/{t.service} {t.protocol}/{t.service_port} ({what}{tail}{note})"


@dataclass(frozen=True)
class Distribution:
    """``connections`` connections from ``probe.source`` to the ClusterIP, counted per endpoint."""

    probe: Probe  # a ClusterIP probe from the client: what each connection is, and how it is judged
    connections: int

    @property
    def target(self) -> ServiceTarget:
        return self.probe.svc  # type: ignore[return-value]

    @property
    def title(self) -> str:
        t = self.target
        return f"svc/{t.service} {t.protocol}/{t.service_port}"

    @property
    def threshold(self) -> float:
        """Half the fair share: each endpoint serves at least this many (no affinity)."""
        return self.connections / len(self.target.endpoints) / 2


@dataclass
class ServicePlan:
    probes: list[Probe] = field(default_factory=list)
    distributions: list[Distribution] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (node, proto, nodePort) -> the Service probe a user's expect: entry to that node's port is (runner.py)
    nodeports: dict[tuple[str, str, int], Probe] = field(default_factory=dict)
    # (source, node, proto, nodePort) -> the client addresses an externalTrafficPolicy Local Service's endpoint
    # may see from that source, when they are not the node's own (an outside client keeps its address)
    local_rules: dict[tuple[str, str, str, int], tuple[SeenRule, ...]] = field(default_factory=dict)
    # (node, Service, proto, port) -> a node's own connection to the ClusterIP: Lab.reach's, not the matrix's
    node_clusterips: dict[tuple[str, str, str, int], Probe] = field(default_factory=dict)
    bridge: str | None = naming.BRIDGE  # the nodes' bridge of pods (plan.cniadd.pod_bridge), for messages


def _pods_by_ip(lab: "Lab") -> dict[str, "PodInfo"]:
    return {str(p.ip): p for p in lab.pods}


def targets(lab: "Lab") -> list[tuple["ServicePortInfo", tuple[tuple[str, str, int], ...], bool]]:
    """Every Service port with its endpoints as (pod, ip, targetPort), and whether all run the echo server."""
    by_ip = _pods_by_ip(lab)
    echo_of = {p.name: echo_ports(p) for p in lab.pods}
    from netlab.plan.services import service_ports  # kube-proxy's plan: only a lab with Services needs it

    out = []
    for sp in service_ports(lab):
        eps = tuple((by_ip[str(ip)].name, str(ip), port) for ip, port in sp.endpoints if str(ip) in by_ip)
        echo = all((port, sp.protocol.upper()) in echo_of[pod] for pod, _, port in eps)
        out.append((sp, eps, echo))
    return out


def local_to(sp: "ServicePortInfo", eps: Iterable[tuple[str, str, int]], node: str) -> list[tuple[str, str, int]]:
    """The endpoints (pod, ip, port) of ``eps`` that run on ``node``: kube-proxy's local endpoints, as the plan
    has them (ServicePortInfo.local_endpoints)."""
    here = {(str(ip), port) for ip, port in sp.local_endpoints(node)}
    return [e for e in eps if (e[1], e[2]) in here]
