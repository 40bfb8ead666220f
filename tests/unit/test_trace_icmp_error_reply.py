"""A refused datagram's reply rows follow the ICMP error its destination's kernel sent back (no root).

The kernel answers a UDP datagram no socket takes with an ICMP port unreachable, which quotes the datagram's
header. Conntrack relates it to the datagram's flow by that quote (and its NAT rewrites the quote as it rewrites
the reply), so the error goes back the reply's way: each reply row it crossed is seen by it, as a TCP reset's
rows are by the reset (qa-q45 #1: they all said NOT SEEN, though tcpdump in the client saw the error arrive).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from netlab.trace.decode import classify, decode
from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import _reply_flow
from netlab.trace.verdict import explain, mark_seen, matches

scapy = pytest.importorskip("scapy")
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

MARK = b"netlab-trace 0badcafe"
CLIENT, POD, VIP = "10.244.0.2", "10.244.1.3", "10.96.0.20"
SENT = Flow("udp", CLIENT, POD, 40001, 9999)  # the datagram as it arrived
REPLY = SENT.reversed()


def error(src: str, dst: str, quoted_src: str, quoted_dst: str, code: int = 3):
    quoted = IP(src=quoted_src, dst=quoted_dst, ttl=62) / UDP(sport=40001, dport=9999) / Raw(MARK)
    return Ether() / IP(src=src, dst=dst, ttl=62) / ICMP(type=3, code=code) / quoted


def packet(frame, netns: str = "demo-fedora-1", ifname: str = "eth0", direction: str = "in", flows=frozenset()):
    return classify(decode(bytes(frame)), netns, ifname, direction, 1.5, MARK, set(flows) | {SENT})


def row(observe: Observe, kind: str = "deliver") -> Hop:
    return Hop(observe.netns, "pod", observe.ifname, kind, kind, observe=observe, direction="reply")


def test_the_port_unreachable_is_seen_on_the_reply_rows_it_crossed():
    p = packet(error(POD, CLIENT, CLIENT, POD))
    assert p is not None and p.role == "error" and p.quoted == SENT
    out = row(Observe("demo-fedora-2", "eth0", "out", REPLY, "reply"), "route")
    back = row(Observe("demo-fedora-1", "eth0", "in", REPLY, "reply"))
    mark_seen([out, back], [p], {"demo-fedora-1", "demo-fedora-2"})
    assert back.seen is True
    assert back.facts["icmp_error"] == "destination unreachable: port unreachable" and back.facts["ttl"] == 62
    assert out.seen is False  # no frame of it there in this capture
    assert explain(Walk([back], "delivered")).delivered


def test_behind_a_service_the_error_is_matched_as_conntrack_un_nats_it():
    """The client's node un-DNATs the error as it un-DNATs a reply: outer source and quoted destination both the
    ClusterIP; the row there expects the reply from the ClusterIP (its alt: the endpoint's, before the un-DNAT)."""
    natted = packet(error(VIP, CLIENT, CLIENT, VIP), flows={Flow("udp", CLIENT, VIP, 40001, 9999)})
    o = Observe("demo-fedora-1", "eth0", "in", Flow("udp", VIP, CLIENT, 9999, 40001), "reply")
    assert matches(natted, o)
    before = packet(error(POD, CLIENT, CLIENT, POD), netns="demo-minikube", ifname="cni0", direction="out")
    assert matches(before, Observe("demo-minikube", "cni0", "out", Flow("udp", VIP, CLIENT, 9999, 40001), "reply",
                                   alt=REPLY))


def test_only_an_error_about_the_traced_packet_and_only_on_reply_rows():
    p = packet(error(POD, CLIENT, CLIENT, POD))
    here = dict(netns="demo-fedora-1", ifname="eth0", direction="in")
    assert matches(p, Observe(**here, flow=REPLY, role="reply"))
    assert not matches(p, Observe(**here, flow=SENT, role="request"))  # the error is no request
    assert not matches(p, Observe(**here, flow=Flow("udp", POD, CLIENT, 9999, 40002), role="reply"))  # other flow
    assert not matches(p, Observe(netns="demo-fedora-1", ifname="eth0", direction="out", flow=REPLY, role="reply"))
    # An error about the reply (a router on the way back could not pass it) quotes the reply, not the datagram:
    # it is no reply of the datagram's
    about_reply = packet(error("10.244.1.1", POD, POD, CLIENT), netns="demo-fedora-2", direction="in",
                         flows={REPLY})
    assert about_reply is not None and not matches(about_reply, Observe("demo-fedora-2", "eth0", "in", REPLY,
                                                                        "reply"))
    # Addressed to another host than the quoted sender: conntrack does not relate it
    astray = packet(error(POD, "10.244.0.9", CLIENT, POD))
    assert not matches(astray, Observe(**here, flow=REPLY, role="reply"))


def test_the_reply_heading_says_the_rows_saw_the_kernels_icmp_error():
    p = packet(error(POD, CLIENT, CLIENT, POD))
    back = row(Observe("demo-fedora-1", "eth0", "in", REPLY, "reply"))
    mark_seen([back], [p], {"demo-fedora-1"})
    r = SimpleNamespace(reply=Walk([back], "delivered"), forward=Walk([], "delivered", final=SENT))
    assert _reply_flow(r) == (f"{REPLY}, seen as the kernel's ICMP destination unreachable: port unreachable, "
                              "which quotes the packet (conntrack relates it to this flow)")
    plain = row(Observe("demo-fedora-1", "eth0", "in", REPLY, "reply"))
    assert _reply_flow(SimpleNamespace(reply=Walk([plain], "delivered"), forward=None)) == str(REPLY)
