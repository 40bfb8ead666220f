"""ICMP as the prober writes and reads it: the echo request, the Internet checksum, and errors.

An echo request (RFC 792) is eight bytes of header and a payload::

    type 8 | code 0 | checksum | identifier | sequence | "netlab" + the run's nonce

The prober builds it once per run and stamps each probe's identifier and
checksum into a copy. An ICMP error (destination unreachable, time exceeded)
carries the IP header and the first eight bytes of the packet it is about:
for an echo request that is its identifier, for a UDP datagram its ports,
which is how a reply names the probe it answers.

Plain ``struct`` on a handful of fields: a probe run reads thousands of
packets, and loading a packet library for these few fields would cost more
than the probes themselves (scapy: ~0.15 s to import).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace

ECHO_REPLY, DEST_UNREACH, ECHO_REQUEST, TIME_EXCEEDED = 0, 3, 8, 11
PORT_UNREACH = 3  # a code of DEST_UNREACH
PROTO_ICMP, PROTO_UDP = 1, 17

# Type and code names as ping(8) and tcpdump(8) print them (the prober and trace print them with icmp_words).
TYPE_NAMES = {ECHO_REPLY: "echo reply", DEST_UNREACH: "destination unreachable", 5: "redirect",
              ECHO_REQUEST: "echo request", TIME_EXCEEDED: "time exceeded", 12: "parameter problem"}
ERRORS = (DEST_UNREACH, 5, TIME_EXCEEDED, 12)  # the types that quote the packet they are about
UNREACH_CODES = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
                 4: "fragmentation needed", 9: "net prohibited", 10: "host prohibited",
                 13: "administratively prohibited"}
EXCEEDED_CODES = {0: "ttl exceeded in transit", 1: "fragment reassembly time exceeded"}
CODE_NAMES = {DEST_UNREACH: UNREACH_CODES, TIME_EXCEEDED: EXCEEDED_CODES}
NO_CODES = (ECHO_REPLY, ECHO_REQUEST)  # RFC 792: code 0 is their only code, so it says nothing


def icmp_words(itype: int, code: int) -> str:
    """An ICMP type and code in words: ``destination unreachable: host unreachable``, ``type 42: code 0``."""
    kind = TYPE_NAMES.get(itype, f"type {itype}")
    if itype in NO_CODES and code == 0:
        return kind
    return f"{kind}: {CODE_NAMES.get(itype, {}).get(code, f'code {code}')}"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(payload: bytes, ident: int = 0, seq: int = 1) -> bytes:
    """An echo request with its checksum."""
    head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    pkt = bytearray(head + payload)
    struct.pack_into("!H", pkt, 2, checksum(bytes(pkt)))
    return bytes(pkt)


@dataclass(frozen=True)
class IcmpError:
    """An ICMP error and the packet it quotes (``echo_id`` or ``udp_ports`` by the quoted protocol)."""

    type: int
    code: int
    reporter: str  # who sent the error
    quoted_dst: str
    echo_id: int | None = None  # the quoted packet was an echo request
    udp_ports: tuple[int, int] | None = None  # the quoted packet was a UDP datagram: (sport, dport)

    def describe(self) -> str:
        """``destination unreachable: host unreachable (ICMP from 10.244.1.1)``."""
        return f"{icmp_words(self.type, self.code)} (ICMP from {self.reporter})"


def parse_error(packet: bytes) -> IcmpError | None:
    """An IPv4 packet read from a raw ICMP socket as an ICMP error, or None (not an error, or too short)."""
    try:
        ihl = (packet[0] & 0x0F) * 4
        itype, code = packet[ihl], packet[ihl + 1]
        if itype not in ERRORS:
            return None
        inner = packet[ihl + 8:]
        inner_ihl = (inner[0] & 0x0F) * 4
        proto = inner[9]
        l4 = inner[inner_ihl:inner_ihl + 8]
        err = IcmpError(itype, code, socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(inner[16:20]))
        if proto == PROTO_ICMP and len(l4) >= 6 and l4[0] == ECHO_REQUEST:
            return replace(err, echo_id=struct.unpack("!H", l4[4:6])[0])
        if proto == PROTO_UDP and len(l4) >= 4:
            return replace(err, udp_ports=struct.unpack("!HH", l4[0:4]))
        return err
    except (IndexError, struct.error, OSError):
        return None
