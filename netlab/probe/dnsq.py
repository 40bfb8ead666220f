"""A probe's DNS question to the cluster DNS, and its answer read back (RFC 1035's wire format).

netlab's echo server answers a probe datagram with the client address it saw;
the cluster DNS add-on's dnsmasq drops such a datagram as garbage, so silence
on its 53/UDP would prove nothing. A probe there (and on its 53/TCP, where a
connect alone proved only that something listens) asks it a real question
instead, one every cluster DNS must answer, its own Service's name::

    kube-dns.kube-system.svc.cluster.local. IN A    (id = the probe's, RD set)

and expects the DNS Service's ClusterIP back: a reply proves the path (pod or
node, through kube-proxy's DNAT for the Service's ClusterIP, to dnsmasq and
back), and its answer proves the DNS works.

Hand-encoded, not scapy: the probe agent and the CLI's judge stay free of an
import that costs more than a whole 50-pod run. Only what a probe needs: one A
question out; in, the header (id, QR, rcode) and the answer section's A
records, names skipped as labels or compression pointers. The unit tests check
both against scapy's DNS dissector.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PORT = 53
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_A = 1
CLASS_IN = 1
QR = 0x8000  # the header's flag: a response
RD = 0x0100  # recursion desired, as a stub resolver sets it


@dataclass(frozen=True)
class Question:
    """What a DNS probe asks (an A record for ``name``) and the address the answer must hold."""

    name: str  # kube-dns.kube-system.svc.cluster.local
    address: str  # the DNS Service's ClusterIP

    @property
    def text(self) -> str:
        return f"A {self.name}"


def query(ident: int, name: str) -> bytes:
    """A recursive A query for ``name`` with id ``ident`` (its low 16 bits)."""
    header = struct.pack("!HHHHHH", ident & 0xFFFF, RD, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split(".") if part)
    return header + labels + b"\0" + struct.pack("!HH", TYPE_A, CLASS_IN)


def answer(data: bytes, ident: int) -> dict | None:
    """The response to query ``ident``: ``{"rcode": "NOERROR", "a": ["10.96.0.10"]}``; None for anything else
    (not DNS, a query, another id, cut short)."""
    if len(data) < 12:
        return None
    rid, flags, qdcount, ancount = struct.unpack_from("!HHHH", data)
    if rid != ident & 0xFFFF or not flags & QR:
        return None
    rcode = flags & 0x000F
    out: dict = {"rcode": RCODES.get(rcode, str(rcode)), "a": []}
    pos = 12
    try:
        for _ in range(qdcount):
            pos = _skip_name(data, pos) + 4  # QTYPE, QCLASS
        for _ in range(ancount):
            pos = _skip_name(data, pos)
            rtype, rclass, _ttl, length = struct.unpack_from("!HHIH", data, pos)
            pos += 10
            if pos + length > len(data):
                return None
            if rtype == TYPE_A and rclass == CLASS_IN and length == 4:
                out["a"].append(socket.inet_ntoa(data[pos:pos + 4]))
            pos += length
    except (struct.error, IndexError):
        return None
    return out


def over_tcp(message: bytes) -> bytes:
    """A DNS message as TCP carries it: its length in two bytes first (RFC 1035 4.2.2)."""
    return struct.pack("!H", len(message)) + message


def from_tcp(stream: bytes) -> bytes | None:
    """The first DNS message of what a TCP connection brought (None: not all of it yet)."""
    if len(stream) < 2:
        return None
    (length,) = struct.unpack_from("!H", stream)
    return stream[2:2 + length] if len(stream) >= 2 + length else None


def _skip_name(data: bytes, pos: int) -> int:
    """The offset after the name at ``pos``: labels up to the root's zero byte, or up to a compression pointer
    (two bytes, 0b11 first), which ends a name."""
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise IndexError("not a label")
        pos += 1 + length


def describe(dns: dict) -> str:
    """``NOERROR, A 10.96.0.10`` / ``NXDOMAIN``."""
    addrs = dns.get("a") or []
    return dns.get("rcode", "?") + (f", A {' '.join(addrs)}" if addrs else "")
