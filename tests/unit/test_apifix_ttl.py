"""A seen row's TTL is labelled with the header it belongs to: outer (the VXLAN carrier) and inner (no root)."""

from __future__ import annotations

from netlab.trace.flow import Flow, Observe
from netlab.trace.hops import Hop
from netlab.trace.verdict import mark_seen

FLOW = Flow.icmp("10.244.0.2", "10.244.1.3", 4242)
MARK = b"netlab-trace 0badcafe"


def row(encapsulated: bool) -> Hop:
    return Hop("n1", "node minikube", "eth0", "encap", "VXLAN",
               observe=Observe("n1", "eth0", "out", FLOW, "request", encapsulated=encapsulated))


def seen(hop: Hop, encapsulated: bool) -> None:
    """The row marked by the frame trace keeps (run.kept: decoded, then worded as capture words it)."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Raw

    from netlab.trace.capture import Frame
    from netlab.trace.run import kept

    pkt = Ether() / IP(src="10.244.0.2", dst="10.244.1.3", ttl=63 if encapsulated else 62) / \
        ICMP(id=4242, seq=1) / Raw(MARK)
    if encapsulated:
        pkt = Ether() / IP(src="192.168.122.215", dst="192.168.122.7", ttl=64) / UDP(sport=34785, dport=8472) / \
            VXLAN(vni=1, flags=0x08) / pkt
    mark_seen([hop], [p for _, p in kept([Frame("n1", "eth0", "out", 1.0, bytes(pkt), 0)], 8472, MARK, {FLOW})],
              {"n1"})


def test_an_encapsulated_packet_shows_the_outer_and_the_inner_ttl():
    """In tcpdump's words, as `netlab capture` prints the frame (it said `outer A:P → B:P VNI 1, outer ttl 64, inner
    ttl 63`, its own words for the same packet)."""
    from netlab.trace.render import _rows

    hop = row(True)
    seen(hop, True)
    assert hop.evidence == ("IP (ttl 64) 192.168.122.215.34785 > 192.168.122.7.8472: VXLAN, flags [I] (0x08), vni 1 "
                            "| inner IP (ttl 63) 10.244.0.2 > 10.244.1.3: ICMP echo request, id 4242, seq 1, length 29")
    assert (hop.facts["ttl"], hop.facts["outer_ttl"], hop.facts["outer_sport"]) == (63, 64, 34785)
    assert f"{' ' * 15}saw: {hop.evidence}" in _rows([hop])


def test_a_plain_packet_shows_its_one_ttl():
    hop = row(False)
    seen(hop, False)
    assert hop.evidence == "IP (ttl 62) 10.244.0.2 > 10.244.1.3: ICMP echo request, id 4242, seq 1, length 29"
    assert hop.facts["ttl"] == 62 and "outer_ttl" not in hop.facts


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
