"""A probe, its ends and the client-address rules its reply is judged by (judge.py), with nothing of the models.

matrix.py builds a lab's probes from its models; the CLI's run of a plain lab builds the same probes from the lab's
state file (plain_report.py) without loading them (the topology's models: ~0.1 s of CPU), and both are judged and
rendered by judge.py and report.py, which need only these classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from netlab.probe.dnsq import Question

if TYPE_CHECKING:
    from netlab.probe.service_targets import ServiceTarget

PROTOS = ("icmp", "tcp", "udp")
# "mtu": an ICMP echo as big as the pod's MTU allows (DF set), asked for with `probe --mtu`: an overlay
# that carries less than the pods send loses exactly these, while every small probe passes.
ORDER = PROTOS + ("mtu",)


@dataclass(frozen=True)
class Endpoint:
    """A pod, node or internet host, as a probe source or destination."""

    name: str
    kind: str  # pod | node | host | service (a Service's ClusterIP, NodePort, LoadBalancer or external address)
    netns: str
    ip: IPv4Address  # the address others reach it at
    node: str | None = None  # a pod's node (a node: itself); None for hosts
    bridge: str | None = None  # the L2 segment a pod's eth0 is on (its node's bridge; None without one: ptp)

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
    question: Question | None = None  # a DNS question instead of the echo line (the cluster DNS's port 53)
    svc: "ServiceTarget | None" = None  # a Service probe: what it targets (services.py)
    size: int = 0  # "mtu" probes: bytes of the ICMP message (header and payload)
    # The client's source port arrives as sent. Not so for a node's own connection to another node's pod in
    # host-gw mode: it leaves with the node's eth0 address, outside the pod network, and Flannel's last
    # FLANNEL-POSTRTG rule (! -s <pod network> -d <pod network> MASQUERADE --random-fully) gives it a new port;
    # the address stays the node's (rule 2 is about a node's own pods, which it reaches unmasqueraded).
    port_kept: bool = True

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
