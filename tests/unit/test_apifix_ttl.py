"""A seen row's TTL is labelled with the header it belongs to: outer (the VXLAN carrier) and inner (no root)."""

from __future__ import annotations

from netlab.trace.flow import Flow, Observe, Packet
from netlab.trace.hops import Hop
from netlab.trace.verdict import mark_seen

FLOW = Flow.icmp("10.244.0.2", "10.244.1.3", 4242)
OUTER = {"src": "192.168.122.215", "dst": "192.168.122.7", "sport": 34785, "dport": 8472, "vni": 1, "ttl": 64}


def row(encapsulated: bool) -> Hop:
    return Hop("n1", "node minikube", "eth0", "encap", "VXLAN",
               observe=Observe("n1", "eth0", "out", FLOW, "request", encapsulated=encapsulated))


def test_an_encapsulated_packet_shows_the_outer_and_the_inner_ttl():
    hop = row(True)
    mark_seen([hop], [Packet("n1", "eth0", "out", 1.0, FLOW, "request", True, OUTER, 63)], {"n1"})
    assert hop.evidence == "outer 192.168.122.215:34785 → 192.168.122.7:8472 VNI 1, outer ttl 64, inner ttl 63"
    assert (hop.facts["ttl"], hop.facts["outer_ttl"]) == (63, 64)


def test_a_plain_packet_shows_its_one_ttl():
    hop = row(False)
    mark_seen([hop], [Packet("n1", "eth0", "out", 1.0, FLOW, "request", False, None, 62)], {"n1"})
    assert hop.evidence == "ttl 62" and "outer_ttl" not in hop.facts


def test_decode_keeps_both_ttls():
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    from netlab.trace.decode import decode

    inner = Ether() / IP(src="10.244.0.2", dst="10.244.1.3", ttl=63) / ICMP(id=4242)
    frame = Ether() / IP(src="192.168.122.215", dst="192.168.122.7", ttl=64) / UDP(sport=34785, dport=8472) / \
        VXLAN(vni=1) / inner
    d = decode(bytes(frame))
    assert (d.outer["ttl"], d.ttl) == (64, 63)
