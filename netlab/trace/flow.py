"""The packet a trace follows: its addresses, where a row expects to see it, and a copy the capture saw.

A :class:`Flow` is the packet's IPv4 addresses and ports at one point of its
path. They change on the way: a Service's DNAT rewrites the destination on
the client's node, a masquerade rewrites the source, conntrack undoes both
for the replies, and a VXLAN device wraps the whole frame into a UDP packet
between two nodes (the inner flow is then carried unchanged).

An :class:`Observe` says where a row of the trace should see the packet
(namespace, interface, direction) and with which addresses; a
:class:`Packet` is one frame the capture really saw, decoded (see decode.py).
A row is seen when a packet matches its observation (see verdict.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from netlab.probe.icmp import PORT_UNREACH


@dataclass(frozen=True)
class Flow:
    """A packet's IPv4 addresses and ports (ICMP: the echo id in both port fields). An ICMP destination
    unreachable (:meth:`unreachable`) has no ports: ``code`` is its code, ``quoted`` the header it quotes (the
    packet it is about, as it quotes it: conntrack relates it to that packet's flow and un-NATs both)."""

    proto: str
    src: str | None
    dst: str
    sport: int | None = None
    dport: int | None = None
    quoted: "Flow | None" = None
    code: int | None = None

    @classmethod
    def icmp(cls, src: str | None, dst: str, ident: int) -> "Flow":
        return cls("icmp", src, dst, ident, ident)

    @classmethod
    def unreachable(cls, src: str | None, dst: str, quoted: "Flow", code: int = PORT_UNREACH) -> "Flow":
        """An ICMP destination unreachable (type 3) from ``src`` to ``dst`` about ``quoted``."""
        return cls("icmp", src, dst, quoted=quoted, code=code)

    def tracked(self) -> "Flow":
        """The flow conntrack looks this packet up by: an ICMP error's is its quoted header turned around (the
        tuple of the direction the error goes, as conntrack's icmp_error_message inverts it)."""
        return self.quoted.reversed() if self.quoted is not None else self

    def reversed(self) -> "Flow":
        return Flow(self.proto, self.dst, self.src or "", self.dport, self.sport)

    def with_src(self, ip: str, port: int | None) -> "Flow":
        if self.quoted is not None:
            return replace(self, src=ip)
        if self.proto == "icmp":
            return Flow(self.proto, ip, self.dst, port, port)
        return replace(self, src=ip, sport=port)

    def with_dst(self, ip: str, port: int | None) -> "Flow":
        if self.quoted is not None:
            return replace(self, dst=ip)
        if self.proto == "icmp":
            return Flow(self.proto, self.src, ip, port, port)
        return replace(self, dst=ip, dport=port)

    def endpoint(self, which: str) -> str:
        ip, port = (self.src, self.sport) if which == "src" else (self.dst, self.dport)
        return f"{ip}:{port}" if self.proto != "icmp" and port is not None else str(ip)

    def __str__(self) -> str:
        if self.quoted is not None:
            what = "port unreachable" if self.code == PORT_UNREACH else f"destination unreachable code {self.code}"
            return f"{self.src} → {self.dst} icmp {what} quoting {self.quoted}"
        if self.proto == "icmp":
            return f"{self.src} → {self.dst} icmp id {self.sport}"
        return f"{self.endpoint('src')} → {self.endpoint('dst')} {self.proto}"


def answer_words(err: Flow, inbound: str | None = None) -> str:
    """An ICMP error a REJECT sent (Flow.unreachable), in a row's words: its type and code, where its source address
    comes from (the request's destination when the node owns it; ``inbound``: an address of the device the request
    came in by, net.ipv4.icmp_errors_use_inbound_ifaddr = 1; the request's own source when the node answers
    itself; else the node's route back to the client picks it), and the header it quotes."""
    q = err.quoted
    if q is None:
        return ""
    if err.src == q.dst:
        whose = "the address the request was for"
    elif inbound:
        whose = (f"an address of {inbound}, the device the request came in by "
                 "(net.ipv4.icmp_errors_use_inbound_ifaddr = 1)")
    elif err.src == err.dst:
        whose = "the request's own source (the node answers itself; its local route to that address picks it)"
    else:
        whose = "the address its route to the client picks"
    return f" (type 3 code {err.code}) from {err.src}, {whose}, to {err.dst}, quoting the request ({q})"


@dataclass(frozen=True)
class Observe:
    """Where and how a row's packet should show up in the capture."""

    netns: str
    ifname: str
    direction: str  # "in" | "out"
    flow: Flow  # the innermost packet's addresses at that point
    role: str  # "request" | "reply"
    encapsulated: bool = False
    # The same packet after this namespace's DNAT: with bridge-nf-call-iptables=1 the bridge
    # runs nat PREROUTING at its port, before the frame reaches the bridge device itself.
    alt: Flow | None = None


@dataclass(frozen=True)
class Packet:
    """One captured frame, decoded as far as the trace needs (see decode.py)."""

    netns: str
    ifname: str
    direction: str  # in | out
    ts: float
    flow: Flow | None  # innermost IPv4 flow (None: ARP or not IPv4)
    role: str | None = None  # request | reply | error | None
    encapsulated: bool = False
    outer: dict[str, Any] | None = None  # src dst sport dport vni of the VXLAN carrier
    ttl: int | None = None
    summary: str = ""  # the frame in tcpdump's words, without the MACs (tcpdump.py; trace/run.kept)
    icmp_error: dict[str, Any] | None = None  # quoted flow, type/code text, reporter
    quoted: Flow | None = None  # an ICMP error's: the flow of the header it quotes (the packet it is about)
    arp: dict[str, Any] | None = None  # op, spa, tpa
    tcp_flags: int | None = None  # a TCP segment's flags byte (0x04: RST)


def is_ip(text: str) -> bool:
    try:
        IPv4Address(text)
        return True
    except ValueError:
        return False
