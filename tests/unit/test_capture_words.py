"""`netlab capture`'s words for a frame (netlab/trace/tcpdump.py): tcpdump's, for every answer the lab's DNS
gives and for the frames a lab carries; the text line and -o json's summary and dns say the same; the filter
expression is compiled by libpcap and refused in one line (QA qt defects 1, 7 and 13)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytest.importorskip("scapy")

from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRROPT, DNSRRSOA, DNSRRSRV  # noqa: E402
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from netlab.trace.capture import Frame, describe, scapy_layers, words  # noqa: E402

WEB = "web.default.svc.cluster.local"
SRV = "_http._tcp.web.default.svc.cluster.local"
ETH = Ether(src="0a:58:0a:f4:00:04", dst="0a:58:0a:f4:00:03")
ASKED = ETH / IP(src="10.244.0.3", dst="10.244.0.4")
ANSWER = ETH / IP(src="10.244.0.4", dst="10.244.0.3") / UDP(sport=53, dport=41234)
SOA = DNSRRSOA(rrname="cluster.local", ttl=30, mname="ns.dns.cluster.local", rname="hostmaster.cluster.local",
               serial=1700000000, refresh=7200, retry=1800, expire=86400, minimum=30)
NS = DNSRR(rrname="cluster.local", type="NS", ttl=30, rdata="ns.dns.cluster.local")
OPT = DNSRROPT(rclass=1232, z=0)

# What kube-dns (dnsmasq, as CoreDNS's kubernetes plugin answers) gives, and what tcpdump -vvv says of each.
DNS_FRAMES = [
    (ASKED / UDP(sport=41234, dport=53) / DNS(id=12345, rd=1, qd=DNSQR(qname=WEB), ar=OPT),
     f"12345+ [1au] A? {WEB}. ar: . OPT UDPsize=1232 (58)"),
    (ANSWER / DNS(id=12345, qr=1, aa=1, rd=1, qd=DNSQR(qname=WEB),
                  an=DNSRR(rrname=WEB, ttl=30, rdata="10.96.0.20"), ns=NS),
     f"12345*- q: A? {WEB}. 1/1/0 {WEB}. [30s] A 10.96.0.20 ns: cluster.local. [30s] NS ns.dns.cluster.local. (139)"),
    (ANSWER / DNS(id=7, qr=1, aa=1, rd=1, qd=DNSQR(qname=SRV, qtype="SRV"),
                  an=DNSRRSRV(rrname=SRV, ttl=30, priority=0, weight=100, port=80, target=WEB), ar=OPT),
     f"7*- q: SRV? {SRV}. 1/0/1 {SRV}. [30s] SRV {WEB}.:80 0 100 ar: . OPT UDPsize=1232 (158)"),
    (ANSWER / DNS(id=8, qr=1, aa=1, rd=1, rcode=3, qd=DNSQR(qname="nope.default.svc.cluster.local"), ns=SOA),
     "8 NXDomain*- q: A? nope.default.svc.cluster.local. 0/1/0 ns: cluster.local. [30s] SOA ns.dns.cluster.local. "
     "hostmaster.cluster.local. 1700000000 7200 1800 86400 30 (141)"),
    (ANSWER / DNS(id=9, qr=1, aa=1, rd=1, qd=DNSQR(qname=WEB, qtype="AAAA"), ns=SOA),  # NODATA: no AAAA
     f"9*- q: AAAA? {WEB}. 0/1/0 ns: cluster.local. [30s] SOA ns.dns.cluster.local. hostmaster.cluster.local. "
     "1700000000 7200 1800 86400 30 (140)"),
    (ANSWER / DNS(id=10, qr=1, aa=1, rd=1, qd=DNSQR(qname="20.0.96.10.in-addr.arpa", qtype="PTR"),
                  an=DNSRR(rrname="20.0.96.10.in-addr.arpa", type="PTR", ttl=30, rdata=WEB)),
     f"10*- q: PTR? 20.0.96.10.in-addr.arpa. 1/0/0 20.0.96.10.in-addr.arpa. [30s] PTR {WEB}. (107)"),
    (ANSWER / DNS(id=11, qr=1, aa=1, rd=1, qd=DNSQR(qname="cluster.local", qtype="SOA"), an=SOA),
     "11*- q: SOA? cluster.local. 1/0/0 cluster.local. [30s] SOA ns.dns.cluster.local. hostmaster.cluster.local. "
     "1700000000 7200 1800 86400 30 (124)"),
    (ANSWER / DNS(id=12, qr=1, rd=1, rcode=5, qd=DNSQR(qname="example.com")),
     "12 Refused- q: A? example.com. 0/0/0 (29)"),
    (ANSWER / DNS(id=13, qr=1, aa=1, rd=1, qd=DNSQR(qname="x.default.svc.cluster.local"),
                  an=[DNSRR(rrname="x.default.svc.cluster.local", type="CNAME", ttl=3600, rdata=WEB),
                      DNSRR(rrname=WEB, ttl=90061, rdata="10.96.0.20")]),
     f"13*- q: A? x.default.svc.cluster.local. 2/0/0 x.default.svc.cluster.local. [1h] CNAME {WEB}., {WEB}. "
     "[1d1h1m1s] A 10.96.0.20 (160)"),
]

# Other frames a lab carries, and the line tcpdump -n -S prints after its time (netlab adds the MACs, the
# length and the IP header's TTL, as -e and -v do).
FRAMES = [
    (ASKED / TCP(sport=58806, dport=8080, flags="S", seq=1000, window=64240,
                 options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]),
     "IP 10.244.0.3.58806 > 10.244.0.4.8080: Flags [S], seq 1000, win 64240, options [mss 1460,sackOK,TS val 1 "
     "ecr 0,nop,wscale 7], length 0"),
    (ASKED / TCP(sport=8080, dport=58806, flags="SA", seq=5000, ack=1001, window=65160),
     "IP 10.244.0.3.8080 > 10.244.0.4.58806: Flags [S.], seq 5000, ack 1001, win 65160, length 0"),
    (ASKED / TCP(sport=58806, dport=8080, flags="PA", seq=1001, ack=5001, window=502) / Raw(b"GET / HTTP/1.1\r\n\r\n"),
     "IP 10.244.0.3.58806 > 10.244.0.4.8080: Flags [P.], seq 1001:1019, ack 5001, win 502, length 18: "
     "HTTP: GET / HTTP/1.1"),
    # a line with a control or high byte (an ESC sequence would colour the terminal) is not said; a line cut short
    (ASKED / TCP(sport=58806, dport=8080, flags="PA", seq=1, ack=1, window=502) / Raw(b"GET /\x1b[31mx HTTP/1.1\r\n"),
     "IP 10.244.0.3.58806 > 10.244.0.4.8080: Flags [P.], seq 1:23, ack 1, win 502, length 22: HTTP"),
    (ASKED / TCP(sport=8080, dport=58806, flags="PA", seq=1, ack=1, window=502) / Raw(b"HTTP/1.1 200 \xc3\xa9\r\n"),
     "IP 10.244.0.3.8080 > 10.244.0.4.58806: Flags [P.], seq 1:18, ack 1, win 502, length 17: HTTP"),
    (ASKED / TCP(sport=58806, dport=8080, flags="PA", seq=1, ack=1, window=502) / Raw(b"GET /a\tb HTTP/1.1"),
     "IP 10.244.0.3.58806 > 10.244.0.4.8080: Flags [P.], seq 1:18, ack 1, win 502, length 17: "
     "HTTP: GET /a\tb HTTP/1.1 [|http]"),
    (ASKED / TCP(sport=58806, dport=8080, flags="R", seq=1019, window=0),
     "IP 10.244.0.3.58806 > 10.244.0.4.8080: Flags [R], seq 1019, win 0, length 0"),
    (ASKED / ICMP(type=8, id=27914, seq=1) / Raw(b"x" * 56),
     "IP 10.244.0.3 > 10.244.0.4: ICMP echo request, id 27914, seq 1, length 64"),
    (ASKED / ICMP(type=3, code=3) / IP(src="10.244.0.4", dst="10.244.0.3") / UDP(sport=40001, dport=9999) / b"ab",
     "IP 10.244.0.3 > 10.244.0.4: ICMP 10.244.0.3 udp port 9999 unreachable, length 38"),
    (ASKED / UDP(sport=40001, dport=8080) / Raw(b"hello"),
     "IP 10.244.0.3.40001 > 10.244.0.4.8080: UDP, length 5"),
    (Ether(src="0a:58:0a:f4:00:03", dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.244.0.3", pdst="10.244.0.1"),
     "ARP, Request who-has 10.244.0.1 tell 10.244.0.3, length 28"),
    (Ether(src="0a:58:0a:f4:00:01", dst="0a:58:0a:f4:00:03") / ARP(op=2, hwsrc="0a:58:0a:f4:00:01",
                                                                  psrc="10.244.0.1", pdst="10.244.0.3"),
     "ARP, Reply 10.244.0.1 is-at 0a:58:0a:f4:00:01, length 28"),
]


def _frame(pkt, direction: str = "in") -> Frame:
    data = bytes(pkt)
    return Frame("lab-a", "eth0", direction, 1700000000.5, data, len(data))


def _ours(pkt) -> str:
    """netlab's line of ``pkt`` without the MACs and the length (link=False: trace's words) and the TTL: what
    tcpdump -n prints."""
    line = words(_frame(pkt), link=False)[0].split(" | quoted ")[0]  # tcpdump prints the quoted header with -v only
    assert words(_frame(pkt))[0].endswith(f", length {len(pkt)}: {words(_frame(pkt), link=False)[0]}")
    return line.replace(f"(ttl {pkt[IP].ttl}) ", "") if IP in pkt else line


@pytest.mark.parametrize("pkt,said", DNS_FRAMES, ids=[s.split("?")[0] for _, s in DNS_FRAMES])
def test_every_answer_the_labs_dns_gives_is_decoded_as_tcpdump_words_it(pkt, said):
    """Not only A: a named port's SRV, a PTR, the SOA, an NXDOMAIN or NODATA with the SOA in the authority
    section, a CNAME (each printed `DNS Ans` before, scapy's bare summary: no id, no rcode, no record)."""
    line, dns = words(_frame(pkt))
    assert dns == said
    assert line.endswith(f"{pkt[IP].src}.{pkt[UDP].sport} > {pkt[IP].dst}.{pkt[UDP].dport}: {said}"), line
    assert "DNS Ans" not in line


def test_dns_over_tcp_after_its_length_and_what_is_not_dns():
    message = bytes(DNS(id=9, rd=1, qd=DNSQR(qname=WEB)))
    tcp = ASKED / TCP(sport=40001, dport=53, flags="PA", seq=1, ack=1, window=8192) / Raw(
        len(message).to_bytes(2, "big") + message)
    assert words(_frame(tcp)) == (
        f"0a:58:0a:f4:00:04 > 0a:58:0a:f4:00:03, length 103: IP (ttl 64) 10.244.0.3.40001 > 10.244.0.4.53: "
        f"Flags [P.], seq 1:50, ack 1, win 8192, length 49: 9+ A? {WEB}. (47)", f"9+ A? {WEB}. (47)")
    cut = bytes(tcp)[:-5]  # the segment ends before the message does: no DNS words, the segment's
    assert words(Frame("a", "eth0", "in", 0.0, cut, len(cut)))[1] is None
    short = ASKED / UDP(sport=40000, dport=53) / Raw(b"\x01")
    assert words(_frame(short))[1] == "domain [length 1 < 12] (invalid)"
    # A port-53 datagram that is no DNS message (netlab's echo server's JSON, QA q23 #1): its header read as a
    # DNS header, then [|domain] where the reading stopped, as tcpdump 4.99 -nn -v prints these very bytes; no
    # Python exception's name.
    echo = b'{"pod": "w1", "node": "q23e5-n1", "from": "10.244.0.3:53055", "proto": "udp"}\n'
    said = words(_frame(ASKED / UDP(sport=40000, dport=53) / Raw(echo)))[1]
    assert said == "31522 zoneInit [b2&3=0x706f] [14880a] [25634q] [8823n] [12578au] [|domain]", said
    cut = b"\x12\x34\x85\x83\x00\x02\x00\x00\x00\x00\x00\x00\x05abc"  # an answer whose question is cut short:
    # tcpdump says its `q:` before it (QA q32 #4)
    assert words(_frame(ASKED / UDP(sport=53, dport=40000) / Raw(cut)))[1] == "4660 NXDomain* [2q] q: [|domain]"
    assert words(_frame(ASKED / UDP(sport=40000, dport=8080) / Raw(b"hello\n")))[1] is None


@pytest.mark.parametrize("pkt,said", FRAMES, ids=[s.split(":")[-1][:20] for _, s in FRAMES])
def test_a_frame_reads_as_tcpdump_prints_it(pkt, said):
    """Ports as numbers (not scapy's `http_alt`), `Flags [S.]`, `ICMP echo request, id N, seq 1, length 64`
    (not `echo-request 0 / Raw`), ARP's `Request who-has`."""
    assert _ours(pkt) == said


def test_the_line_has_the_time_the_direction_the_macs_the_length_and_the_ttl():
    pkt = ASKED / ICMP(type=8, id=7, seq=2) / Raw(b"x" * 56)
    line = describe(_frame(pkt, "out"))
    assert line.split(" ", 2)[1:] == ["out", "0a:58:0a:f4:00:04 > 0a:58:0a:f4:00:03, length 98: IP (ttl 64) "
                                             "10.244.0.3 > 10.244.0.4: ICMP echo request, id 7, seq 2, length 64"]


def test_vxlan_is_the_outer_header_then_the_inner_frame_and_an_icmp_error_the_header_it_quotes():
    scapy_layers(8472)
    inner = ETH / IP(src="10.244.0.2", dst="10.244.1.3", ttl=63) / ICMP(id=5, seq=1) / Raw(b"x" * 56)
    outer = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.168.122.11", dst="192.168.122.12") \
        / UDP(sport=53211, dport=8472) / VXLAN(vni=1, flags=0x08) / inner
    assert words(_frame(outer), 8472)[0] == (
        "02:00:00:00:00:01 > 02:00:00:00:00:02, length 148: IP (ttl 64) 192.168.122.11.53211 > 192.168.122.12.8472: "
        "VXLAN, flags [I] (0x08), vni 1 | inner 0a:58:0a:f4:00:04 > 0a:58:0a:f4:00:03, length 98: IP (ttl 63) "
        "10.244.0.2 > 10.244.1.3: ICMP echo request, id 5, seq 1, length 64")
    assert words(_frame(outer), 8472, link=False)[0] == (  # tcpdump without -e: the inner frame's MACs go too
        "IP (ttl 64) 192.168.122.11.53211 > 192.168.122.12.8472: VXLAN, flags [I] (0x08), vni 1 | inner IP (ttl 63) "
        "10.244.0.2 > 10.244.1.3: ICMP echo request, id 5, seq 1, length 64")
    quoted = IP(src="10.244.0.2", dst="10.244.1.3", ttl=1) / UDP(sport=40001, dport=9999) / b"ab"
    err = ETH / IP(src="10.244.0.1", dst="10.244.0.2") / ICMP(type=11, code=0) / quoted
    assert words(_frame(err))[0].endswith("ICMP time exceeded in-transit, length 38 | quoted IP (ttl 1) "
                                          "10.244.0.2.40001 > 10.244.1.3.9999: UDP, length 2")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (scripts/setup.sh installs it)")
def test_the_words_are_tcpdumps_own(tmp_path):
    """The same frames read by the real tcpdump: its -vvv DNS words and its -n -S line are netlab's."""
    pcap = tmp_path / "f.pcap"
    pkts = [p for p, _ in DNS_FRAMES]
    wrpcap(str(pcap), pkts)
    said = subprocess.run(["tcpdump", "-n", "-vvv", "-r", str(pcap)], capture_output=True, text=True, timeout=30)
    dns = [line.split("] ", 1)[1] for line in said.stdout.splitlines() if "[udp sum ok]" in line]
    assert dns == [words(_frame(p))[1] for p in pkts]
    pkts = [p for p, _ in FRAMES]
    wrpcap(str(pcap), pkts)
    said = subprocess.run(["tcpdump", "-n", "-S", "-r", str(pcap)], capture_output=True, text=True, timeout=30)
    assert [line.split(" ", 1)[1] for line in said.stdout.splitlines()] == [_ours(p) for p in pkts]


def test_a_filter_is_compiled_by_libpcap_and_an_invalid_one_is_one_line():
    from netlab.errors import UsageError
    from netlab.trace.capture import compile_filter

    bpf = compile_filter("udp port 53")
    expected = subprocess.run(["tcpdump", "-y", "EN10MB", "-ddd", "udp port 53"], capture_output=True, text=True,
                              timeout=30).stdout.split("\n")[1:] if shutil.which("tcpdump") else None
    if expected:  # the same program; its accept returns as much of the frame as the socket reads (snaplen)
        accept = f"6 0 0 {65535}"
        assert [" ".join(map(str, i)) for i in bpf.program] == [accept if x.startswith("6 0 0 ") and x != "6 0 0 0"
                                                              else x for x in expected if x]
    assert bpf.program[-1] == (6, 0, 0, 0)  # the last instruction: refuse what did not match
    with pytest.raises(UsageError) as err:
        compile_filter("udp prot 53")
    assert str(err.value) == "capture filter 'udp prot 53': can't parse filter expression: syntax error"
    for expression, why in (("port 80 and (", "can't parse filter expression: syntax error"),
                            ("(port 80) and bogus)", "syntax error in filter expression")):
        with pytest.raises(UsageError) as err:  # libpcap's reason, not cut at the expression's first '(' (rb61 7)
            compile_filter(expression)
        assert str(err.value) == f"capture filter {expression!r}: {why}"


def test_capture_refuses_an_invalid_filter_before_anything_is_opened(monkeypatch):
    import netlab.cli.trace as cli_trace
    from cli_inprocess import run_cli

    def must_not_run(*a, **k):
        raise AssertionError("capture went on")

    monkeypatch.setattr(cli_trace, "require_root", must_not_run)
    monkeypatch.setattr(cli_trace, "_running_lab", must_not_run)
    proc = run_cli("capture", "--lab", "lab", "a:eth0", "-c", "2", "udp", "prot", "53")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "netlab: capture filter 'udp prot 53': can't parse filter expression: syntax error\n"


def test_one_frame_and_one_entry_are_singular():
    from netlab.cli.style import plural
    from netlab.cli.inspect_text import conntrack_lines

    assert [plural(1, "frame"), plural(2, "frame"), plural(1, "entry", "entries"), plural(0, "entry", "entries")] \
        == ["1 frame", "2 frames", "1 entry", "0 entries"]
    lines = conntrack_lines({"total": 1, "by_protocol": {"unknown": 1}, "by_state": {}, "translated": 0,
                             "entries": None}, "n1", "lab")
    assert lines[0].startswith("1 entry: unknown 1"), lines
