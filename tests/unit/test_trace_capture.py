"""Decoding captured frames (VXLAN included) and telling the trace's packet from the rest (no root).

Frames are built with scapy here (bytes only: no namespace is entered and
nothing is sent), then decoded by netlab's own small parser.
"""

from __future__ import annotations

import struct

import pytest

from netlab.trace.capture import Frame, describe, write_pcap, write_pcapng
from netlab.trace.decode import classify, decode
from netlab.trace.flow import Flow

scapy = pytest.importorskip("scapy")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.packet import Raw  # noqa: E402

MARK = b"netlab-trace 0badcafe"
POD_A, POD_B = "10.244.0.2", "10.244.1.3"


def echo(src=POD_A, dst=POD_B, ident=4242, kind=8, ttl=64, payload=MARK + b"\n"):
    return Ether(src="0a:58:0a:f4:00:02", dst="02:c2:7b:6c:db:9f") / IP(src=src, dst=dst, ttl=ttl) / \
        ICMP(type=kind, id=ident, seq=1) / Raw(payload)


def vxlan(inner, vni=1, sport=54896, dport=8472):
    return (Ether(src="02:8f:90:1a:86:6c", dst="02:3a:8e:21:99:dc") / IP(src="192.168.122.215", dst="192.168.122.7")
            / UDP(sport=sport, dport=dport) / VXLAN(vni=vni, flags=0x08) / inner)


def test_icmp_echo_request():
    d = decode(bytes(echo()))
    assert d.flow == Flow.icmp(POD_A, POD_B, 4242)
    assert d.role() == "request" and d.ttl == 64 and MARK in d.payload and d.outer is None


def test_icmp_echo_reply_role():
    d = decode(bytes(echo(src=POD_B, dst=POD_A, kind=0)))
    assert d.role() == "reply" and d.flow == Flow.icmp(POD_B, POD_A, 4242)


def test_vxlan_is_decoded_to_the_inner_packet_with_the_outer_header():
    d = decode(bytes(vxlan(echo(ttl=63))))
    assert d.flow == Flow.icmp(POD_A, POD_B, 4242) and d.ttl == 63
    assert d.outer == {"src": "192.168.122.215", "dst": "192.168.122.7", "sport": 54896, "dport": 8472,
                       "vni": 1, "ttl": 64}


def test_vxlan_only_on_the_labs_port():
    frame = bytes(vxlan(echo(), dport=4789))
    assert decode(frame).outer is None and decode(frame).flow.proto == "udp"
    assert decode(frame, vxlan_ports=(4789,)).outer is not None


def test_tcp_syn_and_synack_roles():
    syn = Ether() / IP(src=POD_A, dst="10.96.0.11") / TCP(sport=40000, dport=80, flags="S", seq=1000)
    synack = Ether() / IP(src="10.96.0.11", dst=POD_A) / TCP(sport=80, dport=40000, flags="SA", seq=5, ack=1001)
    rst = Ether() / IP(src="10.96.0.11", dst=POD_A) / TCP(sport=80, dport=40000, flags="RA", ack=1001)
    ack = Ether() / IP(src=POD_A, dst="10.96.0.11") / TCP(sport=40000, dport=80, flags="A")
    assert decode(bytes(syn)).role() == "request"
    assert decode(bytes(synack)).role() == "reply"
    assert decode(bytes(rst)).role() == "reply"
    assert decode(bytes(ack)).role() is None
    assert decode(bytes(syn)).flow == Flow("tcp", POD_A, "10.96.0.11", 40000, 80)


def test_arp():
    d = decode(bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.244.0.0", pdst="10.244.1.0")))
    assert d.arp["op"] == 1 and d.arp["tpa"] == "10.244.1.0" and d.flow is None


def test_odd_frames_never_raise():
    for data in (b"", b"\x00" * 5, bytes(echo())[:20], bytes(vxlan(echo()))[:60], b"\xff" * 14 + b"\x45"):
        decode(data)


def test_classify_by_marker_flow_and_role():
    flows = {Flow.icmp(POD_A, POD_B, 4242)}
    p = classify(decode(bytes(echo())), "demo-fedora-1", "eth0", "out", 1.0, MARK, flows)
    assert p is not None and p.role == "request" and not p.encapsulated
    other = classify(decode(bytes(echo(ident=1, payload=b"hello"))), "n", "eth0", "out", 1.0, MARK, flows)
    assert other is None
    # After NAT the addresses differ, the marker does not.
    natted = classify(decode(bytes(echo(src="192.168.122.215", ident=999))), "n", "eth0", "out", 1.0, MARK, flows)
    assert natted is not None and natted.role == "request"
    enc = classify(decode(bytes(vxlan(echo()))), "demo-minikube", "eth0", "out", 1.0, MARK, flows)
    assert enc.encapsulated and enc.outer["vni"] == 1


def test_classify_udp_request_and_reply():
    req = Ether() / IP(src=POD_A, dst=POD_B) / UDP(sport=40001, dport=8080) / Raw(MARK)
    rep = Ether() / IP(src=POD_B, dst=POD_A) / UDP(sport=8080, dport=40001) / Raw(b'{"pod": "fedora-2"}\n')
    flows = {Flow("udp", POD_A, POD_B, 40001, 8080), Flow("udp", POD_B, POD_A, 8080, 40001)}
    assert classify(decode(bytes(req)), "a", "eth0", "out", 0, MARK, flows).role == "request"
    assert classify(decode(bytes(rep)), "a", "eth0", "in", 0, MARK, flows).role == "reply"


def test_icmp_error_quoting_our_packet():
    quoted = IP(src=POD_A, dst=POD_B) / UDP(sport=40001, dport=9999) / Raw(MARK)
    err = Ether() / IP(src=POD_B, dst=POD_A) / ICMP(type=3, code=3) / quoted
    d = decode(bytes(err))
    assert d.quoted is not None and d.quoted.flow == Flow("udp", POD_A, POD_B, 40001, 9999)
    p = classify(d, "demo-fedora-1", "eth0", "in", 0, MARK, set())
    assert p.role == "error" and p.icmp_error["text"] == "destination unreachable: port unreachable"
    assert p.icmp_error["from"] == POD_B


def test_a_ttl_exceeded_is_named_like_the_prober_names_it():
    quoted = IP(src=POD_A, dst=POD_B, ttl=1) / ICMP(type=8, id=4242) / Raw(MARK)
    err = Ether() / IP(src="192.168.122.1", dst=POD_A) / ICMP(type=11, code=0) / quoted
    p = classify(decode(bytes(err)), "demo-fedora-1", "eth0", "in", 0, MARK, set())
    assert p.icmp_error["text"] == "time exceeded: ttl exceeded in transit"


def test_a_parameter_problem_quotes_our_packet_too_and_other_icmp_has_no_id():
    """Every ICMP error type quotes the packet it is about (RFC 792), parameter problem (12) included;
    an ICMP message that is neither echo nor error has no identifier to print."""
    quoted = IP(src=POD_A, dst=POD_B) / UDP(sport=40001, dport=9999) / Raw(MARK)
    err = Ether() / IP(src=POD_B, dst=POD_A) / ICMP(type=12, code=0) / quoted
    p = classify(decode(bytes(err)), "demo-fedora-1", "eth0", "in", 0, MARK, set())
    assert p.role == "error" and p.icmp_error["text"] == "parameter problem: code 0"
    stamp = decode(bytes(Ether() / IP(src=POD_A, dst=POD_B) / ICMP(type=13)))
    assert stamp.flow == Flow("icmp", POD_A, POD_B, None, None)


def test_the_marked_echos_socket_names_the_error_that_came_back():
    import socket

    from netlab.trace.send import Sent, wait_reply

    quoted = IP(src=POD_A, dst=POD_B, ttl=1) / ICMP(type=8, id=4242) / Raw(MARK)
    ours, router = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands in for the raw ICMP socket
    sent = Sent("icmp", None, 4242, MARK, _sock=ours)
    try:
        router.send(bytes(IP(src="192.168.122.1", dst=POD_A) / ICMP(type=11, code=0) / quoted))
        wait_reply(sent, 1.0)
    finally:
        sent.close()
        router.close()
    assert not sent.reply and sent.error == "time exceeded: ttl exceeded in transit from 192.168.122.1"


def _frames():
    return [Frame("demo-fedora-1", "eth0", "out", 1000.0, bytes(echo()), 0),
            Frame("demo-minikube", "eth0", "out", 1000.001, bytes(vxlan(echo(ttl=63))), 0)]


def test_pcapng_has_one_interface_per_namespace_device(tmp_path):
    from scapy.utils import rdpcap

    path = str(tmp_path / "t.pcapng")
    assert write_pcapng(path, [(f, f"hop {i}") for i, f in enumerate(_frames(), 1)]) == 2
    pkts = rdpcap(path)
    assert [p.sniffed_on for p in pkts] == ["demo-fedora-1/eth0", "demo-minikube/eth0"]
    assert VXLAN in pkts[1] and pkts[1][VXLAN].vni == 1 and pkts[1][VXLAN].payload[IP].src == POD_A
    assert pkts[0].comments == [b"hop 1"]


def test_classic_pcap(tmp_path):
    from scapy.utils import rdpcap

    path = str(tmp_path / "t.pcap")
    assert write_pcap(path, _frames()) == 2
    assert len(rdpcap(path)) == 2


@pytest.mark.parametrize("write", [write_pcap, lambda path, frames: write_pcapng(path, [(f, None) for f in frames])],
                         ids=["pcap", "pcapng"])
def test_a_pcap_the_disk_cannot_take_is_one_line_naming_it(write, tmp_path):
    """/dev/full refuses every write (ENOSPC), as a full disk does: the machine's (exit 3); a folder removed since
    is the path given (exit 2), as for every other output file (graph -w, --junit)."""
    from netlab.errors import EnvironmentNotReady, UsageError

    with pytest.raises(EnvironmentNotReady) as full:
        write("/dev/full", _frames())
    assert str(full.value) == "cannot write /dev/full: No space left on device (it is cut short)"
    assert full.value.exit_code == 3
    with pytest.raises(UsageError) as gone:
        write(str(tmp_path / "gone" / "t.pcap"), _frames())
    assert str(gone.value) == f"cannot write {tmp_path}/gone/t.pcap: No such file or directory"
    assert gone.value.exit_code == 2


def test_describe_shows_outer_and_inner():
    line = describe(_frames()[1])
    assert "IP (ttl 64) 192.168.122.215.54896 > 192.168.122.7.8472: VXLAN, flags [I] (0x08), vni 1 | inner" in line
    assert "inner" in line and "10.244.0.2 > 10.244.1.3" in line and line.split()[1] == "out"


def test_checksum_of_the_marked_echo():
    from netlab.probe.icmp import checksum as _checksum  # the one trace sends with (trace/send.py)

    hdr = struct.pack("!BBHHH", 8, 0, 0, 4242, 1) + MARK
    csum = _checksum(hdr)
    full = struct.pack("!BBHHH", 8, 0, csum, 4242, 1) + MARK
    assert _checksum(full) == 0
    assert bytes(ICMP(full))[2:4] == full[2:4]


def test_trace_words_the_frames_it_keeps_as_capture_does_without_the_macs():
    """trace's packet summaries are `netlab capture`'s lines (tcpdump.py), without -e's MACs and length: a row's
    saw:, an ARP request, a pcapng comment (it had its own words: `a:p > b:p UDP len N`, `ARP who-has`)."""
    from netlab.trace.capture import words
    from netlab.trace.run import kept

    quoted = IP(src=POD_A, dst=POD_B) / UDP(sport=40001, dport=9999) / Raw(MARK)
    frames = [Frame("n", "eth0", "out", 1.0, bytes(pkt), 0) for pkt in (
        echo(),
        vxlan(echo(ttl=63)),
        Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.244.0.0", pdst="10.244.1.0"),
        Ether() / IP(src=POD_B, dst=POD_A) / ICMP(type=3, code=3) / quoted,
        echo(ident=1, payload=b"not ours"))]
    flows = {Flow.icmp(POD_A, POD_B, 4242)}
    said = [p.summary for _, p in kept(frames, 8472, MARK, flows)]
    assert said == [
        f"IP (ttl 64) {POD_A} > {POD_B}: ICMP echo request, id 4242, seq 1, length 30",
        f"IP (ttl 64) 192.168.122.215.54896 > 192.168.122.7.8472: VXLAN, flags [I] (0x08), vni 1 | inner "
        f"IP (ttl 63) {POD_A} > {POD_B}: ICMP echo request, id 4242, seq 1, length 30",
        "ARP, Request who-has 10.244.1.0 tell 10.244.0.0, length 28",
        f"IP (ttl 64) {POD_B} > {POD_A}: ICMP {POD_B} udp port 9999 unreachable, length 57 | quoted "
        f"IP (ttl 64) {POD_A}.40001 > {POD_B}.9999: UDP, length 21"]
    for frame, p in kept(frames[:1], 8472, MARK, flows):  # capture's line is the same after its MACs
        assert words(frame)[0] == f"0a:58:0a:f4:00:02 > 02:c2:7b:6c:db:9f, length 64: {p.summary}"


def test_an_arp_request_and_a_pcapng_comment_are_said_in_tcpdumps_words():
    from netlab.trace.hops import Hop, Walk
    from netlab.trace.run import _arp_story, _comment, kept

    ask = Frame("demo-minikube", "flannel.1", "out", 1.0,
                bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.244.0.0", pdst="10.244.1.0")), 0)
    (frame, p), = kept([ask], 8472, MARK, set())
    row = Hop("demo-minikube", "node minikube", "flannel.1", "neigh", "no ARP entry", problem="no entry",
              facts={"ip": "10.244.1.0"})
    story = _arp_story(Walk([row], "stopped"), [p])
    assert story == [{"text": "ARP, Request who-has 10.244.1.0 tell 10.244.0.0, length 28", "count": 1,
                      "netns": "demo-minikube", "ifname": "flannel.1", "answered": False}]
    assert _comment(frame, p, [row]) == ("demo-minikube flannel.1 out: "
                                         "ARP, Request who-has 10.244.1.0 tell 10.244.0.0, length 28")
