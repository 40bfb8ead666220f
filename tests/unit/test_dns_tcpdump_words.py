"""DNS messages whose words differed from tcpdump -vvv 4.99.3's (QA q48 #2), and a sweep of types, classes and
extended rcodes, compared with the installed tcpdump (the expected words below are its own, read from pcaps of these
bytes with `tcpdump -nn -vvv -r`).

Before: an SOA whose rname has a bad pointer lost the mname tcpdump says; a name ending in a label's length byte or
a pointer's first byte, the message's last, said `[|domain]` where tcpdump ends the name there and reads on; a
record's data was cut at its length where tcpdump reads on (an A record of 2 bytes: its address from the next ones);
type names came from scapy's table (`Type255` for ANY, `CAA?` for Type257); other classes than IN, the EDNS extended
rcode (BadVers) and a response's `, q:` between its questions were not said; the root reached through a pointer was
`.` where tcpdump says nothing.
"""

from __future__ import annotations

import shutil
import struct

import pytest
from test_dns_cut_short import tcpdump_says

from netlab.trace.tcpdump import dns_words

H = bytes.fromhex
Q = b"\x01a\x00\x00\x01\x00\x01"  # a question: A? a.


def _head(an: int = 0, ns: int = 0, ar: int = 0, qd: int = 1, flags: int = 0x8180) -> bytes:
    return struct.pack("!6H", 7, flags, qd, an, ns, ar)


def _rr(rtype: int, data: bytes, name: bytes = b"\x01b\x00", size: int | None = None, rclass: int = 1) -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, 5, len(data) if size is None else size) + data


def _opt(ext: int) -> bytes:
    return b"\x00" + struct.pack("!HHBBHH", 41, 1232, ext, 0, 0, 0)


A = _rr(1, b"\x01\x02\x03\x04")
CASES = [
    # QA q48 #2's six
    (H("000785030001000000010000046e6f706507636c7573746572056c6f63616c0000010001c0110006000100000005002a026e7303646e"
       "73c0110a686f73746d6173746572c0750000000100001c20000007080001518000000000"),
     "7 NXDomain*- q: A? nope.cluster.local. 0/1/0 ns: cluster.local. [5s] SOA ns.dns.cluster.local. "
     "hostmaster.<BAD PTR> [|domain]"),
    (H("000d8180000100010000000002657803636f6d00000f0001026578f7"), "13 q: MX? ex.com. 1/0/0 ex. (28)"),
    (H("000981800001000100000000055f68747470045f746370037765620000210001c00c0021000100015fcd000d0000006400500377656201"
       "78ec"), "9 q: SRV? _http._tcp.web. 1/0/0 _http._tcp.web. [1d1h1m1s] SRV web.x.:80 0 100 (57)"),
    (H("0006818000010002000000000377777702657803636f6d0000010001c00c00050001000001d3000603776562c010c02800010001000001"
       "2c000209090909"),
     "6 q: A? www.ex.com. 2/0/0 www.ex.com. [7m47s] CNAME web.ex.com., web.ex.com. [5m] A 9.9.9.9 (62)"),
    (H("000d8180000100010000000002657803636f6d00000f000102657803636f6d0000ff00010000003c000f000a046d61006c02657803636f"
       "6d00"), "13 q: MX? ex.com. 1/0/0 ex.com. [1m] ANY (57)"),
    (H("123501000001000000000001037765620764656661756c740373766307636c7573746572056c6f63616c000101000100002904d0000080"
       "00008ca00a00086162636465666768"), "4661+ [1au] Type257? web.default.svc.cluster.local. ar: . OPT [|domain]"),
    # a name ending in a label's length byte or a pointer's first byte: said so far, then read on
    (_head(1) + Q + b"\x05", "7 q: A? a. 1/0/0  (20)"),
    (_head(1) + Q + _rr(5, b"\x05"), "7 q: A? a. 1/0/0 b. [5s] CNAME  (33)"),
    (_head(1) + Q + _rr(5, b"\xc0"), "7 q: A? a. 1/0/0 b. [5s] CNAME  [|domain]"),
    (_head(2) + Q + _rr(15, b"\x00\x01\x01c\x05"), "7 q: A? a. 2/0/0 b. [5s] MX c. 1 [|domain]"),
    (_head(1) + Q + _rr(6, b"\x01c\x00\x01d\x05"), "7 q: A? a. 1/0/0 b. [5s] SOA c. d. [|domain]"),
    (_head(1) + Q + _rr(6, b"\x01c\x05"), "7 q: A? a. 1/0/0 b. [5s] SOA c.  [|domain]"),
    # ... reached through a pointer: the record reads on after the pointer
    (H("0006818000010002000000000377777702657803636f6d0000010001c00c000588010000012c000614776562c010c02800920001000001"
       "2c000409090909"), "6 q: A? www.ex.com. 2/0/0 www.ex.com. (Class 34817) [5m] CNAME webM-@^PM-@(^@M-^R^@^A^@^@^A,"
                          "^@^D^I^I^I., webM-@^PM-@(^@M-^R^@^A^@^@^A,^@^D^I^I^I. [5m] Type146 (62)"),
    # data read on past the record's length
    (_head(2) + Q + _rr(1, b"", size=0) + A, "7 q: A? a. 2/0/0 b. [5s] A 1.98.0.0, b. [5s] A 1.2.3.4 (49)"),
    (_head(1) + Q + _rr(28, b"\x20\x01" + bytes(14), size=4), "7 q: A? a. 1/0/0 b. [5s] AAAA 2001:: (48)"),
    (_head(1) + Q + _rr(15, b"\x00\x0a\x01c\x00", size=2), "7 q: A? a. 1/0/0 b. [5s] MX c. 10 (37)"),
    (_head(1) + Q + _rr(6, b"\x01c\x00", size=3) + b"\x01d\x00" + bytes(20),
     "7 q: A? a. 1/0/0 b. [5s] SOA c. d. 0 0 0 0 0 (58)"),
    (_head(2) + Q + _rr(5, b"\x01c\xc0") + A,
     "7 q: A? a. 2/0/0 b. [5s] CNAME c.M-^AM-^@^@^A^@^B^@., b. [5s] A 1.2.3.4 (52)"),
    # classes, a response's questions, the root through a pointer, DNAME and UNSPECA
    (_head(1) + b"\x01a\x00\x00\xff\x00\xff" + _rr(1, b"\x01\x02\x03\x04", rclass=3),
     "7 q: ANY ANY? a. 1/0/0 b. CHAOS [5s] A 1.2.3.4 (36)"),
    (_head(0, qd=3) + Q + Q + b"\xc0\x0e\x00\x01\x00\x05", "7 [3q] q: A? a., q: A? a., q: A (Class 5)?  0/0/0 (32)"),
    (_head(0, qd=2) + Q + Q[:2], "7 [2q] q: A? a., q: [|domain]"),
    (_head(1) + Q + _rr(39, b"\xc0\x0e"), "7 q: A? a. 1/0/0 b. [5s] DNAME  (34)"),
    (_head(1) + Q + _rr(104, b"\x01\x02"), "7 q: A? a. 1/0/0 b. [5s] UNSPECA^A^B (34)"),
    # the EDNS extended rcode: from the first OPT among the additional records, when its TTL came
    (_head(0, 0, 2) + Q + A + _opt(1), "7 BadVers q: A? a. 0/0/2 ar: b. [5s] A 1.2.3.4, . OPT UDPsize=1232 (47)"),
    (_head(0, 0, 2) + Q + _opt(0) + _opt(1), "7 q: A? a. 0/0/2 ar: . OPT UDPsize=1232, . OPT UDPsize=1232 (41)"),
    (_head(1) + Q + _opt(1), "7 q: A? a. 1/0/0 . OPT UDPsize=1232 (30)"),
    ((_head(0, 0, 1) + Q + _opt(1))[:-1], "7 BadVers q: A? a. 0/0/1 ar: . (29)"),
    ((_head(0, 0, 1) + Q + _opt(1))[:-6], "7 q: A? a. 0/0/1 ar: . (24)"),
    (_head(0, 0, 1, flags=0x8187) + Q + _opt(2), "7 Resp39 q: A? a. 0/0/1 ar: . OPT UDPsize=1232 (30)"),
    (_head(0, 0, 1, flags=0x8181) + Q + _opt(1), "7Resp17 q: A? a. 0/0/1 ar: . OPT UDPsize=1232 (30)"),
    (_head(0, 0, 1, flags=0x0100) + Q + _opt(1), "7+ [1au] A? a. ar: . OPT UDPsize=1232 (30)"),
]


@pytest.mark.parametrize("message,said", CASES, ids=[s[:50] for _, s in CASES])
def test_the_message_is_said_as_tcpdump_says_it(message, said):
    assert dns_words(message) == said


def _sweep() -> list[bytes]:
    """Questions of types 0..300 in some classes, records of those types with some data (not A6, TSIG, URI: their
    data's words are left out), responses with every extended rcode and some header rcodes."""
    question = [struct.pack("!6H", 9, 0x0100, 1, 0, 0, 0) + b"\x01a\x00" + struct.pack("!HH", t, c)
                for t in range(301) for c in (1, 0, 2, 3, 4, 254, 255, 256, 0x8001)]
    data = (b"", b"\x01\x02\x03\x04", b"\x00\x01\x00\x02\x00\x03\x01c\x00", b"\x01c\x00\x01d\xc0\x0e" + bytes(20))
    record = [_head(1) + Q + _rr(t, d, rclass=c) for t in range(301) if t not in (38, 250, 256)
              for c in (1, 3, 255, 2) for d in data]
    rcode = [_head(0, 0, 1, flags=0x8180 | rc) + Q + _opt(ext) for ext in range(256) for rc in (0, 1, 5, 7, 15)]
    return question + record + rcode


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (scripts/setup.sh does)")
def test_the_cases_and_a_sweep_of_types_classes_and_rcodes_read_as_the_installed_tcpdump_reads_them(tmp_path):
    messages = [m for m, _ in CASES] + _sweep()
    said = tcpdump_says(tmp_path / "sweep.pcap", messages)
    assert len(said) == len(messages)
    assert [dns_words(m) for m in messages] == said
