"""The result of ``trace``: its ends, hops and losses (netlab.api.results says what they are)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TraceEnd:
    """One end of a trace: a pod, node, internet host, Service or bare address (the JSON
    leaves out the fields that do not apply, as ``netlab trace -o json`` does)."""

    __json_omit_none__ = True
    __json_aliases__ = {"proto": "protocol"}  # deprecated (docs/json.md)

    name: str
    kind: str
    ip: str
    netns: str | None = None
    port: int | None = None
    protocol: str | None = None  # a destination's: the flow's tcp | udp, with its port (a ping's has neither)
    service: str | None = None

    @property
    def proto(self) -> str | None:
        """Deprecated: ``protocol`` (docs/json.md)."""
        return self.protocol


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
    """The endpoint a Service's DNAT picked for the traced packet (the JSON leaves out the fields that do not
    apply, as ``netlab trace -o json`` does: no ``rule`` for a choice conntrack held, no ``vmap_element`` in
    iptables mode, no ``rule_counted`` in nftables mode, whose rules count nothing)."""

    __json_omit_none__ = True

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
    # a pod's or node's own packet to a LoadBalancer IP: its way through kube-proxy's rules on its node, in words
    path: str | None = None
    # the Service's address the packet was sent to, as probe's service.via: ClusterIP, NodePort, LoadBalancer (also
    # when the balancer sent it on to a node's nodePort), ExternalIP; HostPort: no Service's, portmap's DNAT of a
    # pod's hostPort (service None, svc_chain CNI-HOSTPORT-DNAT, sep_chain the pod's CNI-DN- chain, rule its DNAT)
    via: str | None = None

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
    evidence: str | None  # the frame seen there first, in tcpdump's words (netlab capture's line, no MACs)
    index: int
    observe: Mapping[str, Any] | None = None
    cause: bool = False  # this hop's problem dooms the packet, although it travels on (a Service not DNATed)


@dataclass(frozen=True)
class Trace:
    """The life of one packet (``netlab trace -o json``)."""

    # The flow's words of probe and policy table (docs/json.md); the old keys beside them for one release
    __json_aliases__ = {"src": "source", "dst": "destination", "proto": "protocol"}

    lab: str
    source: TraceEnd
    destination: TraceEnd
    protocol: str  # icmp | tcp | udp
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
    # NetworkPolicy verdicts, one per destination pod judged ("pod"; to a node or an address: "to", the source
    # pod's egress alone): allowed, text, and for a drop node, chain, counted; stopped False for a denied flow that
    # got past the node (trace fails), with the rules on its way the node lacks (missing) or netlab did not write
    # (extra) and the fix, as for an allowed flow a node's REJECT counted
    policy: tuple[Mapping[str, Any], ...] = ()
    # What repairs the lab: in `netlab trace -o json` the `up` (with -t FILE when it came from a file); from
    # Lab.trace the Python call, Lab('NAME').repair(). The fixes in hops and losses stay the CLI's commands.
    repair: str = "sudo netlab up"
    # Delivered, and refused there: nothing listens on (TCP) or is bound to (UDP) the port, said with what is
    # bound there (a TCP reset or an ICMP port unreachable came back). None when not refused.
    refused: str | None = None
    # Delivered from pod to pod, but from another source: a node on the way masqueraded it, and the network model's
    # rule that pods reach pods without NAT is broken (trace fails). text, hop (the masquerade's), source (the
    # address the destination saw), and when the walk found why the packet went there: cause, cause_hop, fix.
    nat: Mapping[str, Any] | None = None
    # Something at the destination answers such a packet (the kernel a SYN or an ICMP echo, a DNS server, netlab's
    # echo server): its reply lost or never sent fails the trace. False only for a UDP datagram to a port nothing
    # of netlab's answers, which a program may take and answer nothing (no reply is then no failure).
    reply_expected: bool = True
    # To an internet host over TCP or UDP: the temporary echo listener that ran there for the trace (as probe's)
    listener: str | None = None
    # Delivered (or its reply back), but by a path the lab did not plan (trace fails): the first row that sent it
    # another way than the plan's (a route via another next hop, an extra route that overrides the plan's, an FDB
    # entry naming another node). hop, label ("4", "r4" on the way back), direction, netns, device, text, reason
    # (the row's problem), fix. None when the packet went the planned way.
    astray: Mapping[str, Any] | None = None
    # The impaired interfaces the path leaves by (an impairment acts on what an interface sends), once per direction:
    # target (NAME:IFACE, as `netlab impair` takes it), impairment ("rate 10mbit loss 1%"), direction (forward or
    # reply), hop (its label). Said even when the packet got through: other packets of the flow may not.
    impairments: tuple[Mapping[str, Any], ...] = ()
    # What is said of an end that is a terminal pod (Completed or Error: its containers exited for good), in the
    # words of probe's note, which leaves its flows out: nothing runs there to answer or send
    notes: tuple[str, ...] = ()
    # The trace's verdict, `netlab trace`'s exit 0: delivered, not refused, the reply (when one is due) back, no
    # denied flow past its node, no masquerade from pod to pod, no row that sent it astray
    ok: bool = True
    # A lab whose `up` or `down` ended before it finished (killed): list's line, as Status.error, which the CLI's
    # trace prints first (realize/interrupted.stalled): the network the packet met is that run's work half done.
    error: str | None = None

    @property
    def src(self) -> TraceEnd:
        """Deprecated: ``source`` (docs/json.md)."""
        return self.source

    @property
    def dst(self) -> TraceEnd:
        """Deprecated: ``destination`` (docs/json.md)."""
        return self.destination

    @property
    def proto(self) -> str:
        """Deprecated: ``protocol`` (docs/json.md)."""
        return self.protocol
