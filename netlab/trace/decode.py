"""Captured frames, decoded as far as the trace needs, and told apart: ours or not.

A small parser, not scapy (it runs on every frame of every namespace the
trace captures): Ethernet (with an 802.1Q tag), ARP, IPv4, ICMP (an error
quotes the header of the packet it is about), TCP, UDP, and the VXLAN
carrier on the lab's port, whose inner frame is decoded in turn::

    Ethernet | IPv4 node → node | UDP → 8472 | VXLAN VNI 1 | Ethernet | IPv4 pod → pod | ICMP echo

The innermost packet is what the trace matches; the carrier's addresses, VNI
and TTL are kept for the rows' facts. :func:`classify` keeps the frames of
the marked packet: its marker in the payload, an exact flow the walk expects
(NAT changes addresses and ports, never the marker or the fields the role is
read from), an ICMP error quoting one of those, and ARP. The words a frame is
said in are tcpdump's, tcpdump.py's (trace/run.py words the frames kept).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, Iterable

from netlab.probe.icmp import ECHO_REPLY, ECHO_REQUEST, ERRORS, icmp_words
from netlab.trace.flow import Flow, Packet

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def ip_text(b: bytes) -> str:
    return socket.inet_ntoa(b)


@dataclass
class Decoded:
    """What the trace needs from one frame (innermost packet, and the VXLAN carrier if any)."""

    eth_src: str = ""
    eth_dst: str = ""
    ethertype: int = 0
    flow: Flow | None = None
    ttl: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    tcp_flags: int | None = None
    tcp_seq: int | None = None
    payload: bytes = b""
    outer: dict[str, Any] | None = None
    quoted: "Decoded | None" = None  # the header an ICMP error quotes
    ip_src: str | None = None  # sender of an ICMP error
    arp: dict[str, Any] | None = None
    # A VXLAN packet's own Ethernet header, the carrier's (source, destination): eth_src and eth_dst above are its
    # inner frame's, which the trace follows; ``outer`` has the carrier's IP and UDP header
    outer_eth: tuple[str, str] | None = None

    def role(self) -> str | None:
        f = self.flow
        if f is None:
            return None
        if f.proto == "icmp":
            if self.quoted is not None:
                return "error"
            return {8: "request", 0: "reply"}.get(self.icmp_type if self.icmp_type is not None else -1)
        if f.proto == "tcp":
            flags = self.tcp_flags or 0
            if flags & 0x02 and not flags & 0x10:
                return "request"
            if flags & 0x02 and flags & 0x10 or flags & 0x04:
                return "reply"
            return None
        return None  # UDP: by addresses (see classify)


def decode(frame: bytes, vxlan_ports: Iterable[int] = (8472,)) -> Decoded:
    """Decode an Ethernet frame as far as the trace needs; never raises on short or odd frames."""
    d = Decoded()
    try:
        _decode_eth(frame, d, tuple(vxlan_ports), depth=0)
    except (struct.error, IndexError, ValueError, OSError):
        pass
    return d


def _decode_eth(frame: bytes, d: Decoded, ports: tuple[int, ...], depth: int) -> None:
    d.eth_dst, d.eth_src = _mac(frame[0:6]), _mac(frame[6:12])
    (etype,) = struct.unpack("!H", frame[12:14])
    off = 14
    if etype == ETH_P_8021Q:
        (etype,) = struct.unpack("!H", frame[16:18])
        off = 18
    d.ethertype = etype
    if etype == ETH_P_ARP:
        op = struct.unpack("!H", frame[off + 6:off + 8])[0]
        d.arp = {"op": op, "sha": _mac(frame[off + 8:off + 14]), "spa": ip_text(frame[off + 14:off + 18]),
                 "tha": _mac(frame[off + 18:off + 24]), "tpa": ip_text(frame[off + 24:off + 28])}
        return
    if etype == ETH_P_IP:
        _decode_ip(frame[off:], d, ports, depth)


def _decode_ip(pkt: bytes, d: Decoded, ports: tuple[int, ...], depth: int, quoted: bool = False) -> None:
    ihl = (pkt[0] & 0x0F) * 4
    proto = pkt[9]
    src, dst = ip_text(pkt[12:16]), ip_text(pkt[16:20])
    d.ttl = pkt[8]
    l4 = pkt[ihl:]
    if proto == 1:
        itype, code = l4[0], l4[1]
        d.icmp_type, d.icmp_code = itype, code
        if itype in (ECHO_REPLY, ECHO_REQUEST):
            ident = struct.unpack("!H", l4[4:6])[0]
            d.flow = Flow.icmp(src, dst, ident)
            d.payload = l4[8:]
        elif itype in ERRORS and not quoted:  # they quote the packet they are about
            q = Decoded()
            try:
                _decode_ip(l4[8:], q, ports, depth, quoted=True)
            except (struct.error, IndexError):
                pass
            d.quoted = q
            d.ip_src = src
            d.flow = Flow("icmp", src, dst, None, None)
        else:
            d.flow = Flow("icmp", src, dst, None, None)
    elif proto == 6:
        sport, dport, seq = struct.unpack("!HHI", l4[0:8])
        d.flow = Flow("tcp", src, dst, sport, dport)
        d.tcp_seq = seq
        d.tcp_flags = l4[13] if len(l4) > 13 else None
        doff = ((l4[12] >> 4) * 4) if len(l4) > 12 else 20
        d.payload = l4[doff:]
    elif proto == 17:
        sport, dport = struct.unpack("!HH", l4[0:4])
        body = l4[8:]
        if dport in ports and depth == 0 and not quoted and len(body) >= 8 + 14:
            word, vni_word = struct.unpack("!II", body[0:8])
            # RFC 7348's header as Linux's vxlan takes it: the I flag alone, the reserved bits zero (a datagram
            # that is no VXLAN packet, a trace's own marker to the port, is dropped by the device, not unwrapped)
            if word == 0x08000000 and not vni_word & 0xFF:
                d.outer = {"src": src, "dst": dst, "sport": sport, "dport": dport, "vni": vni_word >> 8,
                           "ttl": pkt[8]}
                inner = Decoded()
                _decode_eth(body[8:], inner, ports, depth + 1)
                outer, own = d.outer, (d.eth_src, d.eth_dst)
                d.__dict__.update(inner.__dict__)
                d.outer, d.outer_eth = outer, own
                return
        d.flow = Flow("udp", src, dst, sport, dport)
        d.payload = body
    else:
        d.flow = None


def classify(d: Decoded, netns: str, ifname: str, direction: str, ts: float, marker: bytes,
             flows: set[Flow]) -> Packet | None:
    """A captured frame as a trace Packet, or None when it is not ours.

    Ours: the marker in the payload, or an exact flow the walk expects (NAT
    changes addresses and ports, never the marker or the ICMP/TCP fields the
    role is read from), or an ICMP error quoting one of those.
    """
    if d.arp is not None:
        return Packet(netns, ifname, direction, ts, None, None, d.outer is not None, d.outer, None, arp=d.arp)
    f = d.flow
    if f is None:
        return None
    if d.quoted is not None:
        q = d.quoted
        if q.flow is not None and (q.flow in flows or (marker and marker in q.payload)):
            err = {"from": d.ip_src, "type": d.icmp_type, "code": d.icmp_code,
                   "text": icmp_words(d.icmp_type or 0, d.icmp_code or 0), "about": str(q.flow)}
            return Packet(netns, ifname, direction, ts, f, "error", d.outer is not None, d.outer, d.ttl,
                          icmp_error=err, quoted=q.flow)
        return None
    ours = f in flows or (marker and marker in d.payload)
    if not ours:
        return None
    role = d.role()
    if f.proto == "udp":
        role = "request" if marker in d.payload else "reply"
    return Packet(netns, ifname, direction, ts, f, role, d.outer is not None, d.outer, d.ttl, tcp_flags=d.tcp_flags)
