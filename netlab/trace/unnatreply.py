"""A Service reply that reaches the client without its un-DNAT: what the client's kernel does with it.

With ``net.bridge.bridge-nf-call-iptables = 0`` on a node, a same-node
endpoint's reply is bridged straight to the client and conntrack never turns
its source (the endpoint's address) back into the Service's. The client's
kernel looks the reply up among its sockets by both ends: its connection is to
the ClusterIP, so nothing matches one from the endpoint's address, and the
kernel answers as it answers any packet no socket takes (tcp_v4_send_reset,
icmp_send):

- TCP: the SYN-ACK gets a reset (RST, from the client's port to the
  endpoint's), which aborts the endpoint's half-open connection; the client's
  own SYN is never answered, and its connect times out after the
  retransmissions, each of which meets the same fate;
- UDP: the datagram gets an ICMP port unreachable (the client's socket is
  connected to the Service address), and the client's request goes unanswered;
- anything else: the client ignores it.

Pure: words, and the captured frame that proves them (trace/run.py finds it).
"""

from __future__ import annotations

from typing import Iterable

from netlab.trace.flow import Flow, Packet
from netlab.trace.hops import Hop

# What the client's kernel sends back, by protocol (a row's ``client_answers`` fact)
ANSWERS = {"tcp": "reset", "udp": "port unreachable"}
RST = 0x04


def client_words(reply: Flow, service: Flow, endpoint: str | None = None) -> str:
    """What the client makes of ``reply`` (as it arrives: from the endpoint), its connection being with
    ``service`` (the reply as it should have come: from the Service's address); ``endpoint``: the pod's name."""
    whose = f"{endpoint}'s" if endpoint else "the endpoint's"
    if reply.proto == "tcp":
        return (f"the client's kernel has no connection from {reply.endpoint('src')} (its connection is to "
                f"{service.endpoint('src')}), so it answers this SYN-ACK with a reset (TCP RST), which aborts "
                f"{whose} half-open connection; the client's own SYN to {service.endpoint('src')} is never answered "
                "and its connect times out")
    if reply.proto == "udp":
        return (f"the client's kernel has no socket for a datagram from {reply.endpoint('src')} (its socket is "
                f"connected to {service.endpoint('src')}), so it answers it with an ICMP port unreachable; the "
                "client's request is never answered")
    return f"the client, which talks to {service.src}, ignores it"


def answered(proto: str) -> str | None:
    """The client kernel's answer to a reply from the wrong address, in a row's facts (None: it sends none)."""
    return ANSWERS.get(proto)


def client_answer(packets: Iterable[Packet], client_netns: str, arrived: Flow) -> Packet | None:
    """The captured frame in which the client's kernel answers the reply ``arrived`` (as delivered to it): its
    reset (from the client's port to the endpoint's) or its ICMP port unreachable quoting the reply, leaving the
    client's namespace; the first one."""
    back = arrived.reversed()
    hits = [p for p in packets if p.netns == client_netns and p.direction == "out" and p.flow is not None
            and ((arrived.proto == "tcp" and p.flow == back and bool((p.tcp_flags or 0) & RST))
                 or (arrived.proto == "udp" and p.role == "error" and p.quoted == arrived))]
    return min(hits, key=lambda p: p.ts) if hits else None


def verdict_end(client: str, answer: str | None, seen: str | None) -> str:
    """How the reason of a reply lost so ends: it reached the client, whose kernel answered it, and the frame
    of that answer when the capture saw it (``seen``: :func:`seen_words`)."""
    if answer is None:
        return f" and reached {client}, which ignored it"
    what = "a reset" if answer == "reset" else "an ICMP port unreachable"
    return f" and reached {client}, whose kernel answered it with {what}" + (f"; {seen}" if seen else "")


def seen_words(frame: Packet) -> str:
    """The captured answer, in tcpdump's words, and where it was seen."""
    return f"captured leaving {frame.netns} {frame.ifname}: {frame.summary}"


def note_answers(hops: list[Hop], packets: Iterable[Packet], client_netns: str, arrived: Flow | None) -> None:
    """On the reply's row that let it go un-DNATed, the captured frame of the client kernel's answer, if any
    (``answer_seen``: what the verdict quotes)."""
    if arrived is None:
        return
    for h in hops:
        if h.facts.get("stray_reply") in ANSWERS.values():
            frame = client_answer(packets, client_netns, arrived)
            if frame is not None:
                h.facts["answer_seen"] = seen_words(frame)
