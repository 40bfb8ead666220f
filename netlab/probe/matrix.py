"""Which probes a lab gets, what each is expected to show, and how to judge what it showed.

Pure: no sockets, no root. The default expectation is the Kubernetes network
model, everything reaches everything:

- ICMP echo from every pod to every other pod, and from every node to every pod;
- TCP to every port a pod's containers declare (the echo server's 8080/TCP when
  a container declares none), from every other pod and every node: a completed
  connect is proof, whoever serves the port;
- UDP only to ports netlab's echo server listens on (containers without a
  ``command``): only it is known to answer an arbitrary datagram, so silence
  from anything else (dnsmasq on 53/UDP) proves nothing;
- with an ``internet:`` section, egress: TCP and UDP from every pod to every
  internet host on the echo port, answered by a temporary echo listener the
  prober starts there (see listeners.py); the host must see the gateway's
  address. Services are probed by services.py.

A topology's ``expect:`` entries override the matching probe (same from, to,
protocol and port) or add one (a node or internet host as source or
destination, a port nobody declared, UDP to a port with its own server).
``reach: true`` needs evidence: a UDP probe to a port that is not the echo
server's fails on silence like any other, with a hint why; ``reach: false``
holds on silence or refusal.

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

from netlab.model.lab import DEFAULT_ECHO_PORT
from netlab.workload.ports import pod_echo_ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.probe.services import ServiceTarget

PROTOS = ("icmp", "tcp", "udp")
ECHO_PORT = DEFAULT_ECHO_PORT[0]  # the echo server's default port; the prober's listeners on internet hosts too


@dataclass(frozen=True)
class Endpoint:
    """A pod, node or internet host, as a probe source or destination."""

    name: str
    kind: str  # pod | node | host | service (a Service's ClusterIP, NodePort or LoadBalancer address)
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
class SeenRule:
    """Which client address an echo server may report when ``answerer`` answers, and why.

    ``answerer`` is a pod or host name, or ``*`` for whoever answers.
    ``server``: the "ip:port" the request must arrive at (a Service's DNAT target).
    Addresses only: a Service flow's source port may legitimately change (see
    services.clusterip_rule); the pod matrix keeps its exact port check.
    """

    answerer: str
    allowed: tuple[str, ...]
    why: str
    server: str | None = None


@dataclass(frozen=True)
class Probe:
    source: Endpoint
    destination: Endpoint
    proto: str  # icmp | tcp | udp
    port: int | None
    expected: bool
    reason: str = "default"  # "default", "expect[i]", or why a Service probe expects what it does
    section: str | None = None  # matrix block title; None: the protocol/port block ("tcp/8080")
    # Client-address rules (egress, Services); empty: the sender's own address (rules 1 and 2).
    rules: tuple[SeenRule, ...] = ()
    echo: bool | None = None  # netlab's echo server answers there (None: not known)
    svc: "ServiceTarget | None" = None  # a Service probe: what it targets (services.py)

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        return (self.source.name, self.destination.name, self.proto, self.port)

    @property
    def service(self) -> str:
        """``icmp``, ``tcp/8080``, ``udp/53``."""
        return self.proto if self.port is None else f"{self.proto}/{self.port}"

    @property
    def label(self) -> str:
        if self.svc is not None:
            return f"{self.source.name} -> {self.svc.label}"
        return f"{self.source.name} -> {self.destination.name} {self.service}"

    def rule_for(self, answerer: str | None) -> SeenRule | None:
        for rule in self.rules:
            if rule.answerer == answerer or rule.answerer == "*":
                return rule
        return None

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


def echo_ports(pod: "PodInfo") -> set[tuple[int, str]]:
    """(port, PROTOCOL) where netlab's echo server listens in this pod: every container
    without a ``command`` serves its declared ports (8080/TCP if it declares none) and
    the UDP twin of each TCP port (one rule with the containers: workload/ports.py)."""
    return pod_echo_ports(pod)


def probe_ports(pod: "PodInfo") -> list[tuple[int, str, bool]]:
    """(port, proto, echo) the default matrix probes on a pod: TCP on every port it serves
    (a connect is proof), UDP only where the echo server listens."""
    echo = echo_ports(pod)
    out = []
    for port, protocol in pod.ports:
        is_echo = (port, protocol) in echo
        if protocol == "UDP" and not is_echo:
            continue
        out.append((port, protocol.lower(), is_echo))
    return out


def egress_rule(lab: "Lab") -> SeenRule | None:
    """What an internet host must see of a connection from inside the cluster."""
    inet = lab.topo.internet
    if inet is None:
        return None
    gw = str(inet.gateway.ip)
    return SeenRule("*", (gw,), f"egress is masqueraded by the node and again by the gateway: the host sees "
                                f"the gateway's {gw}, never a pod's address")


def egress_section(lab: "Lab", proto: str) -> str:
    gw = lab.topo.internet.gateway.ip if lab.topo.internet else "?"
    return f"egress {proto}/{ECHO_PORT} (pods to internet hosts, seen as the gateway {gw})"


def internet_host_names(lab: "Lab") -> list[str]:
    return [h.name for h in lab.topo.internet.hosts] if lab.topo.internet else []


def build_matrix(lab: "Lab", protos: Iterable[str] = PROTOS, egress: bool = True) -> list[Probe]:
    """Every probe of a lab, in a stable order: sources as in the topology (pods, then nodes).

    ``egress``: with an ``internet:`` section, TCP and UDP from every pod to every
    internet host's echo port (the prober starts the listener there).
    """
    want = set(protos)
    eps = endpoints(lab)
    pods = [eps[p.name] for p in lab.pods]
    nodes = [eps[n.name] for n in lab.nodes]
    ports = {p.name: probe_ports(p) for p in lab.pods}
    echo = {p.name: echo_ports(p) for p in lab.pods}
    hosts = [eps[h] for h in internet_host_names(lab) if h in eps]
    out_rule = egress_rule(lab)
    probes: dict[tuple, Probe] = {}

    def add(p: Probe) -> None:
        probes[p.key] = p

    for src in pods + nodes:
        for dst in pods:
            if src.name == dst.name:
                continue
            if "icmp" in want:
                add(Probe(src, dst, "icmp", None, True))
            for port, proto, is_echo in ports[dst.name]:
                if proto in want:
                    add(Probe(src, dst, proto, port, True, echo=is_echo))
    if egress and out_rule is not None:
        for proto in ("tcp", "udp"):
            if proto not in want:
                continue
            for src in pods:
                for dst in hosts:
                    add(Probe(src, dst, proto, ECHO_PORT, True, section=egress_section(lab, proto),
                              rules=(out_rule,), echo=True))
    host_names = {h.name for h in hosts}
    for i, exp in enumerate(lab.topo.expect):
        if exp.proto not in want:
            continue
        src, dst = eps.get(exp.source), eps.get(exp.to)
        if src is None or dst is None:  # the loader reports unknown names; skip defensively
            continue
        port = None if exp.proto == "icmp" else exp.port
        old = probes.get((src.name, dst.name, exp.proto, port))
        if old is not None:
            section, rules, is_echo = old.section, old.rules, old.echo
        else:
            section, rules, is_echo = None, (), None
            if dst.kind == "pod" and port is not None:
                is_echo = (port, exp.proto.upper()) in echo[dst.name]
            elif dst.name in host_names and port is not None:
                is_echo = port == ECHO_PORT  # the prober's listener
                if src.kind in ("pod", "node") and out_rule is not None:
                    rules = (out_rule,)
        add(Probe(src, dst, exp.proto, port, exp.reach, reason=f"expect[{i}]", section=section, rules=rules,
                  echo=is_echo))
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
            "section": p.section,
            "expected_client": _expected_client(p, o),
            "service": p.svc.to_json() if p.svc is not None else None,
        }


def _expected_client(p: Probe, o: Observation) -> list[str] | None:
    """The client addresses the rules allow for this reply (None: the sender's own, or not an echo reply)."""
    rule = p.rule_for(o.answered_by) if o.answered_by else None
    return list(rule.allowed) if rule is not None else None


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
    Probes with client-address rules (egress, Services) are checked against
    those instead: they say where NAT must happen, and where it must not.
    """
    dst = probe.destination
    if not probe.expected:
        if obs.reached:
            rtt = f" in {obs.rtt * 1000:.1f} ms" if obs.rtt is not None else ""
            by = f" from {obs.answered_by}" if obs.answered_by and obs.answered_by != dst.name else ""
            return [f"expected unreachable, got a reply{by}{rtt}"]
        return []
    if not obs.reached:
        why = why_unreached(obs, timeout)
        if probe.proto == "udp" and probe.echo is False and obs.outcome == "timeout":
            why += (f" (not netlab's echo server: whatever serves udp/{probe.port} on {dst.name} need not "
                    f"answer a probe datagram, so silence proves nothing either way)")
        return [f"expected reachable, {why}"]
    out: list[str] = []
    if probe.proto == "icmp":
        if obs.reply_from and obs.reply_from != dst.addr:
            out.append(f"the reply came from {obs.reply_from}, not {dst.ip} (address translated on the way)")
        return out
    if obs.answered_by is None:
        return out  # not netlab's echo server (a container with its own command): reachability only
    if probe.rules:
        return _judge_rules(probe, obs)
    if dst.kind in ("pod", "host") and obs.answered_by != dst.name:
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


def _judge_rules(probe: Probe, obs: Observation) -> list[str]:
    """An echo reply against the probe's client-address rules."""
    who = obs.answered_by
    rule = probe.rule_for(who)
    if rule is None:
        if probe.svc is not None:
            names = ", ".join(name for name, _, _ in probe.svc.endpoints) or "none"
            return [f"answered by {who}, which is not an endpoint of svc/{probe.svc.service} (endpoints: {names})"]
        return [f"answered by {who}, not {probe.destination.name}"]
    out: list[str] = []
    if probe.svc is None and who != probe.destination.name:
        out.append(f"answered by {who}, not {probe.destination.name}")
    seen_ip = _ip(obs.seen_client)
    if seen_ip is not None and seen_ip not in rule.allowed:
        allowed = " or ".join(rule.allowed)
        out.append(f"NAT: {who} saw the client as {seen_ip}, expected {allowed} ({rule.why})")
    server = rule.server or f"{probe.destination.addr}:{probe.port}"
    if obs.server and obs.server != server:
        what = "the Service's DNAT target" if probe.svc is not None else "the address it was sent to"
        out.append(f"{who} saw the request arrive at {obs.server}, not {server} ({what})")
    return out


def failure_line(r: Result) -> str:
    return f"{r.probe.label}: {'; '.join(r.problems)}"
