"""Capture on many interfaces at once, send one marked packet, decode what was seen.

Sockets are opened the netlab way: the calling thread enters a namespace
(``setns``), opens the socket and comes back; a socket keeps the namespace it
was opened in. So one ``AF_PACKET`` socket per namespace, not bound to an
interface, sees every frame on every interface of that namespace, in and out
(``sll_pkttype`` says which, ``sll_ifindex`` where), timestamped by the kernel.
Nothing is sent from or to the host's namespace: the marked packet comes from
a socket opened inside the source pod or node, addressed to a lab address.

The marked packet is real traffic the kernel handles like any other:

- ICMP: an echo request from a raw socket, with a random id and the payload
  ``netlab-trace <nonce>``;
- TCP: a kernel connection (``connect`` from a random source port), closed with
  a reset as soon as the handshake ends or the time is up;
- UDP: one datagram carrying the marker, from a random source port.

Frames are decoded here with a small parser (Ethernet, ARP, IPv4, ICMP, TCP,
UDP, and the VXLAN carrier on the lab's port); scapy is only used to write
pcaps and to print packets for ``netlab capture``, imported lazily after every
namespace was entered and left (scapy reads interfaces and routes at import:
they must never be a lab namespace's half-entered view, and they are not used).
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from netlab.kernel import netns as nsmod
from netlab.trace.flow import Flow, Packet

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
RCVBUF = 4 << 20
SNAPLEN = 65535
TIMESTAMP_SETTLE = 0.02  # the kernel turns packet timestamps on asynchronously
ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 5: "redirect", 8: "echo request", 11: "time exceeded"}
UNREACH = {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
           4: "fragmentation needed", 9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited"}
TCP_FLAGS = [(0x02, "S"), (0x10, "."), (0x01, "F"), (0x04, "R"), (0x08, "P")]


# --- decoding ------------------------------------------------------------------

def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _ip(b: bytes) -> str:
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

    def summary(self) -> str:
        parts = []
        if self.outer:
            o = self.outer
            parts.append(f"{o['src']}:{o['sport']} > {o['dst']}:{o['dport']} VXLAN vni {o['vni']} |")
        if self.arp:
            a = self.arp
            op = "who-has" if a["op"] == 1 else "is-at" if a["op"] == 2 else f"op {a['op']}"
            parts.append(f"ARP {op} {a['tpa']} tell {a['spa']}" if a["op"] == 1 else f"ARP {a['spa']} is-at {a['sha']}")
        elif self.flow is not None:
            f = self.flow
            if f.proto == "icmp":
                kind = ICMP_TYPES.get(self.icmp_type or 0, f"type {self.icmp_type}")
                parts.append(f"{f.src} > {f.dst} ICMP {kind} id {f.sport}")
            elif f.proto == "tcp":
                flags = "".join(c for bit, c in TCP_FLAGS if (self.tcp_flags or 0) & bit)
                parts.append(f"{f.src}:{f.sport} > {f.dst}:{f.dport} TCP [{flags}] seq {self.tcp_seq}")
            else:
                parts.append(f"{f.src}:{f.sport} > {f.dst}:{f.dport} UDP len {len(self.payload)}")
            if self.ttl is not None:
                parts.append(f"ttl {self.ttl}")
        else:
            parts.append(f"ethertype 0x{self.ethertype:04x}")
        if self.quoted is not None and self.quoted.flow is not None:
            code = UNREACH.get(self.icmp_code or 0, f"code {self.icmp_code}") if self.icmp_type == 3 else ""
            kind = ICMP_TYPES.get(self.icmp_type or 0, f"type {self.icmp_type}")
            parts = [f"{self.ip_src} > {self.flow.dst if self.flow else '?'} ICMP {kind} {code} "
                     f"(about {self.quoted.flow})"]
        return " ".join(parts)


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
        d.arp = {"op": op, "sha": _mac(frame[off + 8:off + 14]), "spa": _ip(frame[off + 14:off + 18]),
                 "tha": _mac(frame[off + 18:off + 24]), "tpa": _ip(frame[off + 24:off + 28])}
        return
    if etype == ETH_P_IP:
        _decode_ip(frame[off:], d, ports, depth)


def _decode_ip(pkt: bytes, d: Decoded, ports: tuple[int, ...], depth: int, quoted: bool = False) -> None:
    ihl = (pkt[0] & 0x0F) * 4
    proto = pkt[9]
    src, dst = _ip(pkt[12:16]), _ip(pkt[16:20])
    d.ttl = pkt[8]
    l4 = pkt[ihl:]
    if proto == 1:
        itype, code = l4[0], l4[1]
        d.icmp_type, d.icmp_code = itype, code
        if itype in (0, 8):
            ident = struct.unpack("!H", l4[4:6])[0]
            d.flow = Flow.icmp(src, dst, ident)
            d.payload = l4[8:]
        elif itype in (3, 5, 11) and not quoted:
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
            flags, vni_word = struct.unpack("!B3xI", body[0:8])
            if flags & 0x08:
                d.outer = {"src": src, "dst": dst, "sport": sport, "dport": dport, "vni": vni_word >> 8,
                           "ttl": pkt[8]}
                inner = Decoded()
                _decode_eth(body[8:], inner, ports, depth + 1)
                outer = d.outer
                d.__dict__.update(inner.__dict__)
                d.outer = outer
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
        return Packet(netns, ifname, direction, ts, None, None, d.outer is not None, d.outer, None,
                      d.summary(), arp=d.arp)
    f = d.flow
    if f is None:
        return None
    if d.quoted is not None:
        q = d.quoted
        if q.flow is not None and (q.flow in flows or (marker and marker in q.payload)):
            kind = ICMP_TYPES.get(d.icmp_type or 0, str(d.icmp_type))
            code = UNREACH.get(d.icmp_code or 0, f"code {d.icmp_code}") if d.icmp_type == 3 else f"code {d.icmp_code}"
            err = {"from": d.ip_src, "type": d.icmp_type, "code": d.icmp_code, "text": f"{kind} ({code})",
                   "about": str(q.flow)}
            return Packet(netns, ifname, direction, ts, f, "error", d.outer is not None, d.outer, d.ttl, d.summary(),
                          icmp_error=err)
        return None
    ours = f in flows or (marker and marker in d.payload)
    if not ours:
        return None
    role = d.role()
    if f.proto == "udp":
        role = "request" if marker in d.payload else "reply"
    return Packet(netns, ifname, direction, ts, f, role, d.outer is not None, d.outer, d.ttl, d.summary())


# --- capturing -------------------------------------------------------------------

@dataclass
class Frame:
    netns: str
    ifname: str
    direction: str  # in | out
    ts: float
    data: bytes
    wirelen: int


class Capture:
    """One AF_PACKET socket per namespace, opened inside it; frames are read when drained."""

    def __init__(self, namespaces: Iterable[str], iface: str | None = None):
        self.socks: dict[str, socket.socket] = {}
        try:
            for ns in namespaces:
                with nsmod.entered(ns):
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                      socket.htons(ETH_P_ALL))
                    if iface:
                        s.bind((iface, ETH_P_ALL))  # the name is resolved in the socket's namespace
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.socks[ns] = s
        except BaseException:
            self.close()
            raise
        self.started = time.time()

    def settle(self) -> None:
        """Give the kernel time to switch packet timestamps on (they would read 'now' otherwise)."""
        time.sleep(TIMESTAMP_SETTLE)

    def drain(self) -> list[Frame]:
        out: list[Frame] = []
        for ns, s in self.socks.items():
            out += _read_all(ns, s)
        out.sort(key=lambda f: f.ts)
        return out

    def wait(self, deadline: float) -> list[Frame]:
        """Frames as they come, until ``deadline`` (for one-interface captures)."""
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        ready, _, _ = select.select(list(self.socks.values()), [], [], left)
        out: list[Frame] = []
        for ns, s in self.socks.items():
            if s in ready:
                out += _read_all(ns, s)
        return out

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.socks = {}

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_all(ns: str, s: socket.socket) -> list[Frame]:
    out = []
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(SNAPLEN, socket.CMSG_SPACE(16), socket.MSG_TRUNC)
        except (BlockingIOError, InterruptedError):
            break
        ts = time.time()
        for level, ctype, cdata in anc:
            if level == socket.SOL_SOCKET and ctype == SCM_TIMESTAMPNS and len(cdata) >= 16:
                sec, nsec = struct.unpack("qq", cdata[:16])
                ts = sec + nsec / 1e9
        wirelen = len(data)
        out.append(Frame(ns, addr[0], "out" if addr[2] == PACKET_OUTGOING else "in", ts, data, wirelen))
    return out


# --- the marked packet -------------------------------------------------------------

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Sent:
    """The marked packet: what was sent and what came back to its socket."""

    proto: str
    src: str | None  # source address when the socket knows it (TCP/UDP), else None: the kernel's choice
    sport: int  # TCP/UDP source port; ICMP echo id
    dst: str
    dport: int | None
    marker: bytes
    sent_at: float
    reply: bool = False
    reply_text: str | None = None
    error: str | None = None
    _sock: socket.socket | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._sock is not None:
            if self.proto == "tcp":
                try:  # a reset, now: nothing lingers in the lab after the trace
                    self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            self._sock.close()
            self._sock = None


def send_marked(netns: str, proto: str, dst: str, dport: int | None, nonce: str) -> Sent:
    """Open a socket inside ``netns`` and send the one marked packet (non-blocking)."""
    marker = f"netlab-trace {nonce}".encode()
    rnd = random.SystemRandom()
    with nsmod.entered(netns):
        if proto == "icmp":
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
        elif proto == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    s.setblocking(False)
    if proto == "icmp":
        ident = rnd.randrange(1, 0xFFFF)
        body = marker + b"\n"
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        csum = _checksum(hdr + body)
        sent = Sent("icmp", None, ident, dst, None, marker, time.time(), _sock=s)
        try:
            s.sendto(struct.pack("!BBHHH", 8, 0, csum, ident, 1) + body, (dst, 0))
        except OSError as exc:  # no route: the walk will show the kernel's answer
            sent.error = sent.reply_text = f"not sent: {exc.strerror}"
        return sent
    sport = _bind_random_port(s, rnd)
    sent = Sent(proto, None, sport, dst, dport, marker, time.time(), _sock=s)
    if proto == "tcp":
        err = s.connect_ex((dst, dport))
        if err not in (0, errno.EINPROGRESS):
            sent.error = sent.reply_text = f"not sent: {os.strerror(err)}"
    else:
        try:
            s.connect((dst, dport))  # a connected UDP socket also gets the ICMP errors
            s.send(marker + b"\n")
        except OSError as exc:
            sent.error = sent.reply_text = f"not sent: {exc.strerror}"
    try:
        src = s.getsockname()[0]
        sent.src = src if src != "0.0.0.0" else None
    except OSError:
        pass
    return sent


def _bind_random_port(s: socket.socket, rnd: random.SystemRandom) -> int:
    for _ in range(50):
        port = rnd.randrange(33000, 60000)
        try:
            s.bind(("0.0.0.0", port))
            return port
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    s.bind(("0.0.0.0", 0))
    return s.getsockname()[1]


def wait_reply(sent: Sent, timeout: float) -> None:
    """Wait (at most ``timeout`` s) for the reply on the packet's own socket."""
    s = sent._sock if not (sent.error or "").startswith("not sent") else None
    deadline = time.monotonic() + timeout
    while s is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if sent.proto == "tcp":
            _, w, _ = select.select([], [s], [], left)
            if not w:
                return
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                sent.reply, sent.reply_text = True, "connection established (SYN-ACK)"
            else:
                sent.reply = err == errno.ECONNREFUSED
                sent.error = os.strerror(err)
                sent.reply_text = f"connection failed: {os.strerror(err)}"
            return
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return
        try:
            data = s.recv(65535)
        except OSError as exc:  # ICMP error on a connected UDP socket
            sent.error = exc.strerror
            sent.reply_text = f"error: {exc.strerror}"
            return
        if sent.proto == "udp":
            sent.reply = True
            sent.reply_text = data.decode(errors="replace").strip()[:200]
            return
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if len(icmp) >= 8 and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == sent.sport \
                and sent.marker in icmp[8:]:
            sent.reply, sent.reply_text = True, f"echo reply from {_ip(data[12:16])} ttl {data[8]}"
            return
        if len(icmp) >= 8 and icmp[0] in (3, 11):
            q = icmp[8:]
            qihl = (q[0] & 0x0F) * 4 if q else 0
            if len(q) >= qihl + 8 and q[9] == 1 and struct.unpack("!H", q[qihl + 4:qihl + 6])[0] == sent.sport:
                kind = ICMP_TYPES.get(icmp[0], str(icmp[0]))
                code = UNREACH.get(icmp[1], f"code {icmp[1]}") if icmp[0] == 3 else f"code {icmp[1]}"
                sent.error = f"{kind} ({code}) from {_ip(data[12:16])}"
                sent.reply_text = sent.error
                return


# --- scapy: pcaps and printing ------------------------------------------------------

_BOUND: set[int] = set()


def scapy_layers(vxlan_port: int = 8472):
    """Import scapy (lazily: only after every namespace was entered and left) with VXLAN on the lab's port."""
    from scapy.layers.l2 import Ether

    if vxlan_port not in _BOUND:
        from scapy.layers.inet import UDP
        from scapy.layers.vxlan import VXLAN
        from scapy.packet import bind_layers

        bind_layers(UDP, VXLAN, dport=vxlan_port)  # scapy knows 4789; Flannel uses 8472
        _BOUND.add(vxlan_port)
    return Ether


def write_pcapng(path: str, frames: list[tuple[Frame, str | None]], vxlan_port: int = 8472) -> int:
    """Write frames to a pcapng file: one interface per ``netns/ifname``, direction and a comment per frame."""
    Ether = scapy_layers(vxlan_port)
    from scapy.utils import PcapNgWriter

    n = 0
    with PcapNgWriter(path) as w:
        for frame, comment in sorted(frames, key=lambda fc: fc[0].ts):
            pkt = Ether(frame.data)
            pkt.time = frame.ts
            pkt.sniffed_on = f"{frame.netns}/{frame.ifname}"
            pkt.direction = 2 if frame.direction == "out" else 1
            if comment:
                pkt.comments = [comment.encode()]
            w.write(pkt)
            n += 1
    return n


def write_pcap(path: str, frames: list[Frame], vxlan_port: int = 8472) -> int:
    """A classic pcap (one interface)."""
    Ether = scapy_layers(vxlan_port)
    from scapy.utils import PcapWriter

    with PcapWriter(path, linktype=1, sync=True) as w:
        for frame in frames:
            pkt = Ether(frame.data)
            pkt.time = frame.ts
            w.write(pkt)
    return len(frames)


def describe(frame: Frame, vxlan_port: int = 8472, verbose: bool = False) -> str:
    """One line per frame like tcpdump's (VXLAN decoded by scapy); with verbose, every layer."""
    Ether = scapy_layers(vxlan_port)
    stamp = time.strftime("%H:%M:%S", time.localtime(frame.ts)) + f".{int(frame.ts % 1 * 1e6):06d}"
    pkt = Ether(frame.data)
    line = f"{stamp} {frame.direction:<3} {_one_line(pkt)}"
    if verbose:
        line += "\n" + pkt.show(dump=True)
    return line


def _one_line(pkt: Any) -> str:
    """``MAC > MAC <scapy summary>``; a VXLAN frame as its outer UDP carrier, then the inner frame."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.vxlan import VXLAN

    def frame(p: Any) -> str:
        return f"{p.src} > {p.dst} {p.payload.summary()}" if hasattr(p, "src") and p.payload else p.summary()

    if VXLAN in pkt and IP in pkt and UDP in pkt:
        ip, udp, vx = pkt[IP], pkt[UDP], pkt[VXLAN]
        return (f"{pkt.src} > {pkt.dst} IP {ip.src}:{udp.sport} > {ip.dst}:{udp.dport} UDP VXLAN vni {vx.vni} "
                f"ttl {ip.ttl} | inner {frame(vx.payload)}")
    return frame(pkt)


def live(capture: Capture, count: int, timeout: float, on_frame: Callable[[Frame], None]) -> int:
    """Read frames until ``count`` were seen or ``timeout`` seconds passed; return how many."""
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < count and time.monotonic() < deadline:
        for frame in capture.wait(deadline):
            on_frame(frame)
            seen += 1
            if seen >= count:
                break
    return seen


def frames_in(frames: list[Frame], vxlan_ports: Iterable[int]) -> Iterator[tuple[Frame, Decoded]]:
    ports = tuple(vxlan_ports)
    for f in frames:
        yield f, decode(f.data, ports)
