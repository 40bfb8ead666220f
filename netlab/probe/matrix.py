"""Which probes a lab gets, what each is expected to show, and how to judge what it showed.

Pure: no sockets, no root. The default expectation is the Kubernetes network
model, everything reaches everything:

- ICMP echo from every pod to every other pod, and from every node to every pod;
- TCP and UDP to every port a pod's containers declare (the echo server's
  8080/TCP when a container declares none), from every other pod and every node.

A topology's ``expect:`` entries override the matching probe (same from, to,
protocol and port) or add one (a node or internet host as source or
destination, a port nobody declared).

Judging a reply checks the three rules as such, not only "it answered":

1. and 2. no NAT between pods and from nodes to pods: the echo server reports
   the client address it saw; it must be the address the sender used (a pod's
   IP; for a node, its own address on the path, the one the kernel picked);
3. the server saw the request arrive at the address the client sent it to,
   and each pod's eth0 carries the address others reach it at (checked per
   pod, see :class:`SelfCheck`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from netlab.model.lab import Lab

PROTOS = ("icmp", "tcp", "udp")


@dataclass(frozen=True)
class Endpoint:
    """A pod, node or internet host, as a probe source or destination."""

    name: str
    kind: str  # pod | node | host
    netns: str
    ip: IPv4Address  # the address others reach it at
    node: str | None = None  # a pod's node (a node: itself); None for hosts
    bridge: str | None = None  # the L2 segment a pod's eth0 is on (its node's cni0)

    @property
    def addr(self) -> str:
        """The IP as text (cached: a 200-pod matrix asks 40,000 times)."""
        try:
            return self._addr  # type: ignore[attr-defined]
        except AttributeError:
            object.__setattr__(self, "_addr", str(self.ip))
            return self._addr  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Probe:
    source: Endpoint
    destination: Endpoint
    proto: str  # icmp | tcp | udp
    port: int | None
    expected: bool
    reason: str = "default"  # "default" or "expect[i]"

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        return (self.source.name, self.destination.name, self.proto, self.port)

    @property
    def service(self) -> str:
        """``icmp``, ``tcp/8080``, ``udp/53``."""
        return self.proto if self.port is None else f"{self.proto}/{self.port}"

    @property
    def label(self) -> str:
        return f"{self.source.name} -> {self.destination.name} {self.service}"

    @property
    def same_bridge(self) -> bool:
        """Both ends are pods on one bridge: they resolve each other with ARP directly."""
        s, d = self.source, self.destination
        return s.kind == d.kind == "pod" and s.bridge is not None and s.bridge == d.bridge


def endpoints(lab: "Lab") -> dict[str, Endpoint]:
    out: dict[str, Endpoint] = {}
    for n in lab.nodes:
        out[n.name] = Endpoint(n.name, "node", n.netns, n.ip, node=n.name)
    for p in lab.pods:
        out[p.name] = Endpoint(p.name, "pod", p.netns, p.ip, node=p.node, bridge=f"{p.node}/cni0")
    hosts = {h.name: h.ip for h in lab.topo.internet.hosts} if lab.topo.internet else {}
    for name, netns in lab.internet_hosts:
        if name in hosts:
            out[name] = Endpoint(name, "host", netns, hosts[name])
        elif name == "gateway" and lab.topo.internet is not None:
            out[name] = Endpoint(name, "host", netns, lab.topo.internet.gateway.ip)
    return out


def build_matrix(lab: "Lab", protos: Iterable[str] = PROTOS) -> list[Probe]:
    """Every probe of a lab, in a stable order: sources as in the topology (pods, then nodes)."""
    want = set(protos)
    eps = endpoints(lab)
    pods = [eps[p.name] for p in lab.pods]
    nodes = [eps[n.name] for n in lab.nodes]
    ports = {p.name: p.ports for p in lab.pods}
    probes: dict[tuple, Probe] = {}

    def add(p: Probe) -> None:
        probes[p.key] = p

    for src in pods + nodes:
        for dst in pods:
            if src.name == dst.name:
                continue
            if "icmp" in want:
                add(Probe(src, dst, "icmp", None, True))
            for port, protocol in ports[dst.name]:
                proto = protocol.lower()
                if proto in want:
                    add(Probe(src, dst, proto, port, True))
    for i, exp in enumerate(lab.topo.expect):
        if exp.proto not in want:
            continue
        src, dst = eps.get(exp.source), eps.get(exp.to)
        if src is None or dst is None:  # the loader reports unknown names; skip defensively
            continue
        port = None if exp.proto == "icmp" else exp.port
        add(Probe(src, dst, exp.proto, port, exp.reach, reason=f"expect[{i}]"))
    order: dict[str, int] = {}
    for name in [p.name for p in pods] + [n.name for n in nodes] + list(eps):
        order.setdefault(name, len(order))
    return sorted(probes.values(), key=lambda p: (PROTOS.index(p.proto), p.port or 0, order[p.source.name],
                                                  order[p.destination.name]))


# --- results and judgement ----------------------------------------------------------


@dataclass
class Observation:
    """What the agent saw for one probe (plain data; the agent fills it)."""

    outcome: str = "timeout"  # reply | timeout | refused | unreachable | error | skipped
    detail: str = ""  # e.g. "host unreachable (ICMP from 10.244.1.1)"
    rtt: float | None = None  # seconds
    local: str | None = None  # "ip:port" (or "ip" for icmp) the sender used
    seen_client: str | None = None  # "ip:port" the echo server saw
    server: str | None = None  # "ip:port" the echo server says it was reached at
    answered_by: str | None = None  # pod name in the echo reply
    reply_from: str | None = None  # source address of the reply packet
    ttl: int | None = None  # IP TTL of an ICMP echo reply

    @property
    def reached(self) -> bool:
        return self.outcome == "reply"

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Result:
    probe: Probe
    obs: Observation
    timeout: float = 1.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        p, o = self.probe, self.obs
        return {
            "source": p.source.name,
            "destination": p.destination.name,
            "protocol": p.proto,
            "port": p.port,
            "destination_ip": str(p.destination.ip),
            "expected": "reachable" if p.expected else "unreachable",
            "observed": "reachable" if o.reached else "unreachable",
            "outcome": o.outcome,
            "detail": o.detail or None,
            "as_expected": self.ok,
            "problems": list(self.problems),
            "local_address": o.local,
            "seen_client_address": o.seen_client,
            "server_address": o.server,
            "answered_by": o.answered_by,
            "ttl": o.ttl,
            "rtt_ms": None if o.rtt is None else round(o.rtt * 1000, 3),
            "reason": p.reason,
        }


@dataclass(frozen=True)
class SelfCheck:
    """Rule 3 from the pod's side: the address on its eth0 is the one others reach it at."""

    pod: str
    expected: str
    seen: str | None  # eth0's address read inside the pod; None if it has none

    @property
    def ok(self) -> bool:
        return self.seen == self.expected

    @property
    def problem(self) -> str:
        seen = self.seen or "no address"
        return (f"{self.pod}: sees itself as {seen} on eth0, but others reach it at {self.expected} "
                f"(rule 3: the IP a pod sees itself as is the IP others see it as)")

    def to_json(self) -> dict:
        return {"pod": self.pod, "eth0_address": self.seen, "reached_at": self.expected, "ok": self.ok}


def _ip(addr: str | None) -> str | None:
    return addr.rsplit(":", 1)[0] if addr else None


def _seconds(t: float) -> str:
    return f"{t:g} s"


def why_unreached(obs: Observation, timeout: float) -> str:
    if obs.outcome == "timeout":
        return f"no reply in {_seconds(timeout)}"
    if obs.outcome == "refused":
        return "connection refused" if not obs.detail else obs.detail
    if obs.outcome == "skipped":
        return obs.detail or "not probed"
    return obs.detail or obs.outcome


def judge(probe: Probe, obs: Observation, timeout: float, sender_ip: str | None) -> list[str]:
    """Problems with one probe's result, in words (empty: as expected).

    ``sender_ip`` is the address the source used (a pod's IP; for nodes and
    hosts the kernel's choice of source address towards the destination).
    """
    dst = probe.destination
    if not probe.expected:
        if obs.reached:
            rtt = f" in {obs.rtt * 1000:.1f} ms" if obs.rtt is not None else ""
            by = f" from {obs.answered_by}" if obs.answered_by and obs.answered_by != dst.name else ""
            return [f"expected unreachable, got a reply{by}{rtt}"]
        return []
    if not obs.reached:
        return [f"expected reachable, {why_unreached(obs, timeout)}"]
    out: list[str] = []
    if probe.proto == "icmp":
        if obs.reply_from and obs.reply_from != dst.addr:
            out.append(f"the reply came from {obs.reply_from}, not {dst.ip} (address translated on the way)")
        return out
    if obs.answered_by is None:
        return out  # not netlab's echo server (a container with its own command): reachability only
    if dst.kind == "pod" and obs.answered_by != dst.name:
        out.append(f"answered by {obs.answered_by}, not {dst.name}")
    seen_ip = _ip(obs.seen_client)
    if sender_ip and seen_ip and seen_ip != sender_ip:
        rule = "rule 1, pod to pod" if probe.source.kind == "pod" else "rule 2, node to pod"
        out.append(f"NAT: {dst.name} saw the client as {seen_ip}, but {probe.source.name} sent from "
                   f"{sender_ip} ({rule}: no NAT)")
    elif obs.local and obs.seen_client and ":" in obs.local and obs.local != obs.seen_client:
        out.append(f"NAT: {dst.name} saw the client as {obs.seen_client}, but {probe.source.name} sent from "
                   f"{obs.local} (source port translated)")
    server_ip = _ip(obs.server)
    if server_ip and server_ip != dst.addr:
        out.append(f"{dst.name} saw the request arrive at {server_ip}, but it was sent to {dst.ip} "
                   f"(rule 3: the IP a pod sees itself as is the IP others see it as)")
    return out


def failure_line(r: Result) -> str:
    return f"{r.probe.label}: {'; '.join(r.problems)}"
