"""Capture on many interfaces at once; write and print what was captured.

Sockets are opened the netlab way: the calling thread enters a namespace
(``setns``), opens the socket and comes back; a socket keeps the namespace it
was opened in. So one ``AF_PACKET`` socket per namespace, not bound to an
interface, sees every frame on every interface of that namespace, in and out
(``sll_pkttype`` says which, ``sll_ifindex`` where), timestamped by the kernel.

Frames are decoded with netlab's own small parser (decode.py); scapy is only
used to write pcaps and to print packets for ``netlab capture``, imported
lazily after every namespace was entered and left (scapy reads interfaces and
routes at import: they must never be a lab namespace's half-entered view, and
they are not used).
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from netlab.errors import EnvironmentNotReady
from netlab.kernel import netns as nsmod
from netlab.probe.dnsq import RCODES, PORT as DNS_PORT, from_tcp
from netlab.trace.decode import Decoded, decode

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
RCVBUF = 4 << 20
SNAPLEN = 65535
TIMESTAMP_SETTLE = 0.02  # the kernel turns packet timestamps on asynchronously


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

    def settle(self) -> None:
        """Give the kernel time to switch packet timestamps on (they would read 'now' otherwise)."""
        time.sleep(TIMESTAMP_SETTLE)

    def drain(self) -> list[Frame]:
        """The frames queued on the sockets now, without waiting, in the order they came."""
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


# --- scapy: pcaps and printing ------------------------------------------------------
# scapy is imported inside these functions only: it is slow to import, and it reads the
# interfaces and routes of the namespace it is imported in, which must never be a lab's.

_BOUND: set[int] = set()


def scapy_layers(vxlan_port: int = 8472):
    """Import scapy (lazily: only after every namespace was entered and left) with VXLAN on the lab's port."""
    from scapy.layers.l2 import Ether  # scapy: lazily, see above

    if vxlan_port not in _BOUND:
        import scapy.layers.dns  # noqa: F401  (binds UDP and TCP port 53 to DNS: a query prints as one)
        from scapy.layers.inet import UDP  # scapy: lazily, see above
        from scapy.layers.vxlan import VXLAN
        from scapy.packet import bind_layers

        bind_layers(UDP, VXLAN, dport=vxlan_port)  # scapy knows 4789; Flannel uses 8472
        _BOUND.add(vxlan_port)
    return Ether


@contextmanager
def _writing(path: str) -> Iterator[None]:
    """A pcap the disk cannot take (full, a quota, a folder gone): one line naming it, not scapy's traceback."""
    try:
        yield
    except OSError as exc:
        cut = " (it is cut short)" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
        raise EnvironmentNotReady(f"cannot write {path}: {exc.strerror or exc}{cut}") from None


def write_pcapng(path: str, frames: list[tuple[Frame, str | None]], vxlan_port: int = 8472) -> int:
    """Write frames to a pcapng file: one interface per ``netns/ifname``, direction and a comment per frame."""
    Ether = scapy_layers(vxlan_port)
    from scapy.utils import PcapNgWriter  # scapy: lazily, see above

    n = 0
    with _writing(path), PcapNgWriter(path) as w:
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
    from scapy.utils import PcapWriter  # scapy: lazily, see above

    with _writing(path), PcapWriter(path, linktype=1, sync=True) as w:
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
    """``MAC > MAC <scapy summary>``; a VXLAN frame as its outer UDP carrier, then the inner frame; a DNS
    message as tcpdump words it (:func:`_dns_line`)."""
    from scapy.layers.dns import DNS  # scapy: lazily, see above
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.vxlan import VXLAN

    def frame(p: Any) -> str:
        if DNS in p and IP in p and (UDP in p or TCP in p):
            l4 = p[UDP] if UDP in p else p[TCP]
            text = (f"{p.src} > {p.dst} IP / {l4.name} {p[IP].src}:{l4.sport} > {p[IP].dst}:{l4.dport} / "
                    f"{_dns_line(p[DNS])}")
        else:
            text = f"{p.src} > {p.dst} {p.payload.summary()}" if hasattr(p, "src") and p.payload else p.summary()
        return f"{text} ttl {p[IP].ttl}" if IP in p else text  # -o json has it too: a loop shows as it falls

    if VXLAN in pkt and IP in pkt and UDP in pkt:
        ip, udp, vx = pkt[IP], pkt[UDP], pkt[VXLAN]
        return (f"{pkt.src} > {pkt.dst} IP {ip.src}:{udp.sport} > {ip.dst}:{udp.dport} UDP VXLAN vni {vx.vni} "
                f"ttl {ip.ttl} | inner {frame(vx.payload)}")
    return frame(pkt)


def dns_of(d: Decoded) -> str | None:
    """A decoded frame's DNS message (UDP or TCP, to or from port 53) in tcpdump's words, as the text output
    prints it (``DNS 0x1a2b A? web.default.svc.cluster.local.``); over TCP the message follows its two-byte
    length (RFC 1035 4.2.2). None: no DNS port, or no whole message in this frame."""
    f = d.flow
    if f is None or f.proto not in ("udp", "tcp") or DNS_PORT not in (f.sport, f.dport) or not d.payload:
        return None
    from scapy.layers.dns import DNS  # scapy: lazily, see above

    message = from_tcp(d.payload) if f.proto == "tcp" else d.payload
    return _dns_line(DNS(message)) if message else None


def _dns_line(d: Any) -> str:
    """A DNS message in tcpdump's words: ``DNS 0x1a2b A? web.default.svc.cluster.local.``, its answer ``DNS
    0x1a2b NOERROR A 10.96.0.20`` (``NXDOMAIN``, the records' types and data); what scapy cannot read, as is."""
    from scapy.layers.dns import dnsqtypes  # scapy: lazily, see above

    def text(value: Any) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    try:
        qd = d.qd[0] if d.qd else None
        question = f"{dnsqtypes.get(qd.qtype, qd.qtype)}? {text(qd.qname)}" if qd is not None else "no question"
        if not d.qr:
            return f"DNS {d.id:#06x} {question}"
        rcode = RCODES.get(d.rcode, str(d.rcode))
        records = [f"{dnsqtypes.get(rr.type, rr.type)} {text(rr.rdata)}" for rr in (d.an or [])]
        return f"DNS {d.id:#06x} {rcode} ({question})" + (f" {', '.join(records)}" if records else "")
    except Exception:  # noqa: BLE001 - scapy raises many kinds for a message it cannot read
        return d.summary()


def live(capture: Capture, count: int, timeout: float, on_frame: Callable[[Frame], None]) -> int:
    """Read frames until ``count`` were seen or ``timeout`` seconds passed; return how many."""
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while seen < count and time.monotonic() < deadline:
            for frame in capture.wait(deadline):
                on_frame(frame)
                seen += 1
                if seen >= count:
                    break
    except KeyboardInterrupt:
        # Ctrl-C: the frames the kernel had already queued on the socket came before it, so they count too.
        for frame in capture.drain()[:max(0, count - seen)]:
            on_frame(frame)
        raise
    return seen


def frames_in(frames: list[Frame], vxlan_ports: Iterable[int]) -> Iterator[tuple[Frame, Decoded]]:
    ports = tuple(vxlan_ports)
    for f in frames:
        yield f, decode(f.data, ports)
