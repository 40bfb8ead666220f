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
        VXLAN(vni=1, flags=0x08) / inner  # Linux's header (scapy's default before an Ethernet frame is GPE's)
    d = decode(bytes(frame))
    assert (d.outer["ttl"], d.ttl) == (64, 63)


def test_a_datagram_to_the_vxlan_port_that_is_no_vxlan_packet_is_plain_udp():
    """trace's marked datagram to a node's UDP 8472 ("netlab-trace ...": its first byte has the I flag's bit) was
    taken for a VXLAN packet and never matched its row: "LOST at hop 1, look at the firewall". Linux's vxlan takes
    only the I flag with the reserved bits zero (VXLAN-GPE's next-protocol flag too is dropped by a plain device)."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    from netlab.trace.decode import decode
    from netlab.trace.flow import Flow
    from netlab.trace.send import marker_of

    marked = Ether() / IP(src="10.244.0.2", dst="192.168.122.215") / UDP(sport=40000, dport=8472) / \
        (marker_of("0123abcd") + b"\n" * 30)
    d = decode(bytes(marked))
    assert d.outer is None and d.flow == Flow("udp", "10.244.0.2", "192.168.122.215", 40000, 8472)
    inner = Ether() / IP(src="10.244.0.2", dst="10.244.1.3") / ICMP(id=7)
    gpe = Ether() / IP() / UDP(sport=1, dport=8472) / VXLAN(vni=1) / inner  # scapy makes it GPE: flags 0x0c
    assert bytes(gpe)[42] == 0x0C and decode(bytes(gpe)).outer is None
    plain = Ether() / IP() / UDP(sport=1, dport=8472) / VXLAN(vni=1, flags=0x08) / inner
    assert decode(bytes(plain)).outer["vni"] == 1 and decode(bytes(plain)).flow == Flow.icmp("10.244.0.2",
                                                                                             "10.244.1.3", 7)
