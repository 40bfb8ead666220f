"""A DNS message scapy cannot read to its end (cut short, a bad compression pointer, no DNS at all) in capture's and
trace's words, as tcpdump -vvv 4.99.3 prints the same bytes: what it could read, then ` [|domain]`.

A response said only its header before: `4660 [|domain]` where tcpdump says `4660 q: [|domain]`, `4660 [0q]
[|domain]` where it says `4660 [0q] 1/0/0 foo. [|domain]` (QA q32 #4); a SRV record cut 3 bytes short read as whole
(`SRV web.:80 0 100 (68)`), a forward pointer as `.`. The expected words below are tcpdump's own, read from pcaps of
these bytes (`tcpdump -nn -vvv -r`); the last test asks the installed tcpdump again, for these and every cut of
twelve messages (ten answers, two requests), plain and name-compressed as servers send them.

A message cut in an OPT record's options (dig sends a COOKIE) said `OPT UDPsize=1232 DO [|domain]` where tcpdump
says `OPT [|domain]`, and a whole one dropped the options tcpdump says, `[COOKIE 6162636465666768]`; a TXT string's
control and high bytes came raw (an ESC sequence coloured the terminal) where tcpdump says `^[` and `M-^?` (QA q41
#1, #2).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR, DNSRRMX, DNSRROPT, DNSRRSOA, DNSRRSRV, EDNS0TLV, dns_compress

from netlab.trace.tcpdump import dns_words

H = bytes.fromhex
ASKED = DNS(id=4660, qr=1, aa=1, rd=1, ra=1, qd=DNSQR(qname="web.default.svc.cluster.local", qtype="A"),
            an=DNSRR(rrname="web.default.svc.cluster.local", type="A", ttl=30, rdata="10.96.0.20"),
            ar=DNSRROPT(rclass=1232))
NXDOMAIN = DNS(id=7, qr=1, rcode=3, aa=1, qd=DNSQR(qname="nope.cluster.local"),
               ns=DNSRRSOA(rrname="cluster.local", ttl=5, mname="ns.dns.cluster.local",
                           rname="hostmaster.cluster.local", serial=1, refresh=7200, retry=1800, expire=86400,
                           minimum=5))
SRV = DNS(id=9, qr=1, ra=1, qd=DNSQR(qname="_http._tcp.web", qtype="SRV"),
          an=DNSRRSRV(rrname="_http._tcp.web", ttl=90061, target="web.x", port=80, priority=0, weight=100))
PTR = DNS(id=10, qr=1, rd=1, ra=1, qd=DNSQR(qname="20.0.96.10.in-addr.arpa", qtype="PTR"),
          an=DNSRR(rrname="20.0.96.10.in-addr.arpa", type="PTR", ttl=30, rdata="web.default.svc.cluster.local"))
CNAME = DNS(id=6, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.ex.com", qtype="A"),
            an=[DNSRR(rrname="www.ex.com", type="CNAME", ttl=300, rdata="web.ex.com"),
                DNSRR(rrname="web.ex.com", type="A", ttl=300, rdata="9.9.9.9")])
AAAA = DNS(id=5, qr=1, rd=1, ra=1, qd=DNSQR(qname="w.svc", qtype="AAAA"),
           an=[DNSRR(rrname="w.svc", type="AAAA", ttl=30, rdata="fd00:10:244::20"),
               DNSRR(rrname="w.svc", type="AAAA", ttl=30, rdata="::ffff:1.2.3.4")], ar=DNSRROPT(rclass=4096))
MX = DNS(id=13, qr=1, rd=1, ra=1, qd=DNSQR(qname="ex.com", qtype="MX"),
         an=DNSRRMX(rrname="ex.com", ttl=60, preference=10, exchange="mail.ex.com"))
ASKING = DNS(id=3, rd=1, qd=DNSQR(qname="a.b"), an=DNSRR(rrname="a.b", rdata="1.2.3.4"),
             ns=DNSRR(rrname="a.b", type="NS", rdata="n.b"), ar=DNSRROPT())
COOKIE = H("123501000001000000000001037765620764656661756c740373766307636c7573746572056c6f63616c000001"
           "000100002904d000008000000c000a0008") + b"abcdefgh"  # dig's query: its client cookie
EDNS = DNS(id=11, qr=1, rd=1, ra=1, qd=DNSQR(qname="w.svc"),
           an=DNSRR(rrname="w.svc", ttl=30, rdata="10.96.0.20"),
           ar=DNSRROPT(rclass=1232, z=0x8000, rdata=[
               EDNS0TLV(optcode=10, optdata=H("0001020304050607") + H("08090a0b0c0d0e0f1011121314151617")),
               EDNS0TLV(optcode=3, optdata=b"ns1"), EDNS0TLV(optcode=8, optdata=H("00011800c0a801")),
               EDNS0TLV(optcode=12, optdata=bytes(9)), EDNS0TLV(optcode=65001, optdata=b"")]))
TXT = DNS(id=12, qr=1, rd=1, ra=1, qd=DNSQR(qname="t.svc", qtype="TXT"),
          an=[DNSRR(rrname="t.svc", type="TXT", ttl=30, rdata=[b"hello", b"w\x01\xffd", b""]),
              DNSRR(rrname="t.svc", type="TXT", ttl=30, rdata=[b"a\x1b[31mRED\x1b[0m \t\x7f\x80\xa0"])])
ONE = H("123481800001000100000000") + b"\x03foo\x00\x00\x01\x00\x01\x03bar"  # a response, its answer's name next

CASES = [
    # QA q32 #4's three responses
    (H("123481800001000100000000") + b"\x03foo\xff\xff", "4660 q: [|domain]"),
    (H("123481830002000000000000") + b"\x05", "4660 NXDomain [2q] q: [|domain]"),
    (H("123481800000000100000000") + b"\x03foo", "4660 [0q] 1/0/0 foo. [|domain]"),
    # an answer cut in its address, in its name; a compression pointer forwards (scapy: `A? .`); a label type
    # it refuses (scapy: a question of Type28527)
    (bytes(ASKED)[:80], "4660* q: A? web.default.svc.cluster.local. 1/0/1 web.default.svc.cluster.local. [|domain]"),
    (bytes(ASKED)[:55], "4660* q: A? web.default.svc.cluster.local. 1/0/1 web.def [|domain]"),
    (H("123481800001000000000000") + b"\xc0\x0c\x00\x01\x00\x01", "4660 q: A? <BAD PTR> [|domain]"),
    (H("123481800001000000000000") + b"\x83foo\x00\x00\x01\x00\x01", "4660 q: [|domain]"),
    # the SOA's fixed part cut: tcpdump takes the record as read to the end and says the length, no [|domain]
    (bytes(NXDOMAIN)[:60], "7 NXDomain*- q: A? nope.cluster.local. 0/1/0 ns: cluster.local. (60)"),
    # a SRV record 3 bytes short (scapy read it to a made-up end: `SRV web.:80 0 100 (68)`)
    (bytes(SRV)[:-3], "9 q: SRV? _http._tcp.web. 1/0/0 _http._tcp.web. [1d1h1m1s] SRV [|domain]"),
    # a record's fixed part cut, or a label with none of its bytes: the last record ends the line as a whole
    # message does; with records still to come, [|domain]
    (bytes(SRV)[:48], "9 q: SRV? _http._tcp.web. 1/0/0 _http._tcp.web. (48)"),
    (bytes(CNAME)[:67], "6 q: A? www.ex.com. 2/0/0 www.ex.com. [5m] CNAME web.ex.com., web. (67)"),
    (bytes(ASKED)[:48], "4660* q: A? web.default.svc.cluster.local. 1/0/1  [|domain]"),
    (bytes(ASKED)[:93], "4660* q: A? web.default.svc.cluster.local. 1/0/1 web.default.svc.cluster.local. [30s] "
                        "A 10.96.0.20 ar: . (93)"),
    # a pointer back into the labels it ends (a loop), an unknown label type, a record's data too short for it
    (H("123481800001000000000000") + b"\x03foo\xc0\x0c\x00\x01\x00\x01", "4660 q: A? foo.<BAD PTR> [|domain]"),
    (ONE[:-4] + b"\x83bar" + H("000001000100000005000401020304"), "4660 q: A? foo. 1/0/0 <BAD LABEL TYPE> [|domain]"),
    (ONE + H("0000010001000000050003010203"), "4660 q: A? foo. 1/0/0 bar. [5s] A [|domain]"),
    (ONE + H("0000210001000000050003010203"), "4660 q: A? foo. 1/0/0 bar. [5s] SRV  [|domain]"),
    (ONE + H("0000050001000000050002c030"), "4660 q: A? foo. 1/0/0 bar. [5s] CNAME <BAD PTR> [|domain]"),
    # whole messages: a label's control and high bytes as tcpdump shows them; a request's answer and ns records
    (H("1234818000010001000000000366e96f0000010001") + b"\x03b\x01r" + H("000001000100000005000401020304"),
     "4660 q: A? fM-io. 1/0/0 b^Ar. [5s] A 1.2.3.4 (40)"),
    (bytes(ASKING),
     "3+ [1a] [1n] [1au] A? a.b. a.b. [0s] A 1.2.3.4 ns: a.b. [0s] NS n.b. ar: . OPT UDPsize=4096 DO (71)"),
    # an OPT record cut in its options: OPT, no UDPsize (QA q41 #1); whole, its options; an option running past the
    # record's data, as far as the message goes
    (COOKIE[:-2], "4661+ [1au] A? web.default.svc.cluster.local. ar: . OPT [|domain]"),
    (COOKIE, "4661+ [1au] A? web.default.svc.cluster.local. ar: . OPT UDPsize=1232 DO [COOKIE 6162636465666768] "
             "(70)"),
    (bytes(EDNS), "11 q: A? w.svc. 1/0/1 w.svc. [30s] A 10.96.0.20 ar: . OPT UDPsize=1232 DO [COOKIE "
                  "0001020304050607 08090a0b0c0d0e0f1011121314151617,NSID 6e7331,ECS 192.168.1.0/24/0,PADDING "
                  "(9),Opt65001] (118)"),
    (COOKIE[:-14] + H("000a000a0008") + b"abcdef", "4661+ [1au] A? web.default.svc.cluster.local. ar: . OPT "
                                                     "UDPsize=1232 DO [COOKIE [|domain]"),
    # TXT strings: control and high bytes as tcpdump shows them (QA q41 #2); a string running past the data
    (bytes(TXT), '12 q: TXT? t.svc. 2/0/0 t.svc. [30s] TXT "hello" "w^AM-^?d" "", t.svc. [30s] TXT '
                 '"a^[[31mRED^[[0m ^I^?M-^@M- " (88)'),
    (ONE[:-4] + H("0000100001000000050003") + b"\x03ab", '4660 q: A? foo. 1/0/0 . [5s] TXT "ab [|domain]'),
    # requests, as before: the echo server's JSON on port 53, a question cut
    (b'{"pod": "w1", "node": "q23e5-n1", "from": "10.244.0.3:53055", "proto": "udp"}\n',
     "31522 zoneInit [b2&3=0x706f] [14880a] [25634q] [8823n] [12578au] [|domain]"),
    (H("002a01000001000000000000") + b"\x03web\x07default", "42+ [|domain]"),
]


@pytest.mark.parametrize("message,said", CASES, ids=[s[:40] for _, s in CASES])
def test_a_message_scapy_cannot_read_is_said_as_tcpdump_says_it(message, said):
    assert dns_words(message) == said


def _pcap(payloads: list[bytes]) -> bytes:
    """Each payload in a UDP datagram from port 53 (IP and UDP lengths true, no trailer), as a pcap."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for n, payload in enumerate(payloads):
        udp = struct.pack("!HHHH", 53, 40000, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 96, 0, 10]),
                         bytes([10, 244, 0, 3])) + udp
        frame = b"\x0a\x58\x0a\xf4\x00\x03" * 2 + b"\x08\x00" + ip
        out += struct.pack("<IIII", n + 1, 0, len(frame), len(frame)) + frame
    return out


def tcpdump_says(path, payloads: list[bytes]) -> list[str]:
    """What the installed ``tcpdump -nn -vvv`` prints of each payload (written to ``path`` by :func:`_pcap`), after
    the addresses and ports and its checksum word."""
    path.write_bytes(_pcap(payloads))
    text = subprocess.run(["tcpdump", "-nn", "-vvv", "-r", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return [re.sub(r"^\[(no cksum|udp sum ok)\] ", "", line.split(".53 > 10.244.0.3.40000: ", 1)[1])
            for line in text.splitlines() if ".53 > 10.244.0.3.40000: " in line]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (scripts/setup.sh does)")
def test_every_cut_of_twelve_messages_reads_as_the_installed_tcpdump_reads_it(tmp_path):
    plain = (ASKED, NXDOMAIN, SRV, PTR, CNAME, AAAA, MX, ASKING, EDNS, TXT, DNS(COOKIE),
             DNS(COOKIE[:2] + H("8180") + COOKIE[4:]))  # the server's answer, with no answer, its cookie
    messages = [bytes(m) for m in plain] + [bytes(dns_compress(m)) for m in plain]
    cuts = [m[:n] for m in messages for n in range(12, len(m) + 1)] + [m for m, _ in CASES]
    said = tcpdump_says(tmp_path / "cuts.pcap", cuts)
    assert len(said) == len(cuts)
    assert [dns_words(m) for m in cuts] == said
