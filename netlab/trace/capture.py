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

import ctypes
import errno
import os
import socket
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from netlab import outfile, signals
from netlab.outkinds import PCAP
from netlab.errors import EnvironmentNotReady, UsageError, output_unwritable
from netlab.kernel import fdwait, netns as nsmod
from netlab.model.naming import netns_path
from netlab.trace import scapyconf
from netlab.trace.decode import Decoded, decode
from netlab.trace.flow import Flow

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
RCVBUF = 4 << 20
SNAPLEN = 65535
SO_ATTACH_FILTER = 26
DLT_EN10MB = 1  # libpcap's link type of Ethernet frames
TIMESTAMP_SETTLE = 0.02  # the kernel turns packet timestamps on asynchronously
# What a read of a packet socket bound to a device says when the device goes down (ENETDOWN, once: the socket reads
# again once it is up, as tcpdump goes on) or is gone (ENXIO, ENODEV: a read never says that on Linux, taken alike).
LINK_ERRNOS = (errno.ENETDOWN, errno.ENXIO, errno.ENODEV)
GONE_CHECK = 0.5  # how often a one-interface capture asks whether its device and namespace are still there


class _Insn(ctypes.Structure):  # struct sock_filter (linux/filter.h): one classic BPF instruction
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


@dataclass(frozen=True)
class Bpf:
    """A capture filter as libpcap compiled it: tcpdump's expression and its classic BPF program, which the
    kernel runs on every frame before it is queued on the socket (SO_ATTACH_FILTER)."""

    expression: str
    program: tuple[tuple[int, int, int, int], ...]

    def attach(self, s: socket.socket) -> None:
        insns = (_Insn * len(self.program))(*[_Insn(*i) for i in self.program])
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(_Prog(len(self.program), insns)))


def compile_filter(expression: str) -> Bpf:
    """tcpdump's filter expression compiled by libpcap (through scapy) for Ethernet frames, which is what an
    AF_PACKET socket reads on every lab interface (a veth, a bridge, flannel.1, lo too). No interface is
    opened: an expression that does not compile is a UsageError naming libpcap's reason."""
    scapyconf.load()
    from scapy.arch.common import compile_filter as pcap_compile  # scapy: lazily (the host's view, no lab's)
    from scapy.error import Scapy_Exception

    try:
        bp = pcap_compile(expression, linktype=DLT_EN10MB)
    except ImportError:
        raise EnvironmentNotReady("a capture filter is compiled by libpcap, which this machine lacks; "
                                  "fix: sudo apt-get install tcpdump (it brings libpcap)") from None
    except Scapy_Exception as exc:
        said, head = str(exc), f"Failed to compile filter expression {expression!r} ("  # scapy's words, then libpcap's
        reason = said[len(head):-1] if said.startswith(head) and said.endswith(")") else said
        raise UsageError(f"capture filter {expression!r}: {reason}") from None
    program = tuple((bp.bf_insns[i].code, bp.bf_insns[i].jt, bp.bf_insns[i].jf, bp.bf_insns[i].k & 0xFFFFFFFF)
                    for i in range(bp.bf_len))
    from scapy.arch.common import free_filter

    free_filter(bp)
    return Bpf(expression, program)


@dataclass
class Frame:
    netns: str
    ifname: str
    direction: str  # in | out
    ts: float
    data: bytes
    wirelen: int


class Capture:
    """One AF_PACKET socket per namespace, opened inside it; frames are read when drained. With ``iface``, the
    one interface's frames, those ``bpf`` (:func:`compile_filter`) accepts if it is given."""

    def __init__(self, namespaces: Iterable[str], iface: str | None = None, bpf: Bpf | None = None):
        self.socks: dict[str, socket.socket] = {}
        self.iface = iface
        self.homes: dict[str, tuple[int, int]] = {}  # netns -> the namespace its socket was opened in (nsfs dev, ino)
        self.notes: list[str] = []  # what the reads said of the link (it went down), not yet told
        # A device deleted goes down first (ENETDOWN) and is unbound a moment later: a "went down" is held until a
        # later check finds the device still there, and dropped when it finds it deleted (said once, as deleted)
        self.held: list[str] = []
        self.ended: str | None = None  # why the capture cannot go on: its device or its namespace is gone
        try:
            for ns in namespaces:
                with nsmod.entered(ns):
                    home = os.stat("/proc/thread-self/ns/net")
                    self.homes[ns] = (home.st_dev, home.st_ino)
                    # Bound to one interface, the socket takes no frame before its bind (protocol 0, as libpcap
                    # opens it): none of another interface, none the filter would refuse.
                    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                      0 if iface else socket.htons(ETH_P_ALL))
                    if iface:
                        if bpf is not None:
                            bpf.attach(s)
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
            out += _read_all(ns, s, self._link_error)
        out.sort(key=lambda f: f.ts)
        return out

    def wait(self, deadline: float, into: list[Frame] | None = None) -> list[Frame]:
        """Frames as they come, until ``deadline`` (for one-interface captures), also added to ``into``. A device that
        went down is a note (:attr:`notes`, once a check after it finds the device still there) and the capture goes
        on; one that is gone, or its namespace, ends it (:attr:`ended`): the kernel says nothing more to a socket
        whose device was deleted, so that is asked every GONE_CHECK s.

        A Ctrl-C or SIGTERM waits while frames are read off the sockets and put in ``into`` (signals.held): one
        that landed between a read and its return lost the frames read (a capture stopped once the last DNS answer
        came printed 11 of 12 frames on a loaded machine); it takes effect once they are the caller's."""
        left = deadline - time.monotonic()
        if left <= 0 or self.ended:
            return []
        ready = fdwait.ready(list(self.socks.values()), min(left, GONE_CHECK) if self.iface else left)
        earlier, self.held = self.held, []  # read by an earlier round: the device was there after it, or not now
        out: list[Frame] = []
        with signals.held():
            for ns, s in self.socks.items():
                if s in ready:
                    out += _read_all(ns, s, self._link_error)
            if into is not None:
                into += out
        for ns, s in self.socks.items():
            if self.iface and not self.ended:
                self.ended = self.gone(ns, s)
        self.told(earlier)
        return out

    def told(self, held: list[str]) -> None:
        """The "went down" lines ``held``, once a check after them found the device still there; none when it is
        deleted (:attr:`ended` says that)."""
        if self.ended:
            self.held = []
        else:
            self.notes += held

    def last_check(self) -> None:
        """The capture stops (its count, its timeout): a "went down" still held is told once the device is found
        still there, else the capture ended as deleted."""
        if self.held:
            held, self.held = self.held, []
            for ns, s in self.socks.items():
                self.ended = self.ended or (self.gone(ns, s) if self.iface else None)
            self.told(held)

    def _link_error(self, ns: str, code: int) -> None:
        if code == errno.ENETDOWN:
            self.held.append(f"{ns} {self.iface or 'an interface'} went down; still capturing "
                             "(frames again once it is up)")
        else:
            self.ended = self.ended or f"{ns} {self.iface}: {os.strerror(code)}"

    def gone(self, ns: str, s: socket.socket) -> str | None:
        """Why this socket can read nothing more (None: it can): its namespace was deleted (or is another one now)
        or its device was deleted, which leaves the socket bound to no device (its name reads empty)."""
        try:
            st = os.stat(netns_path(ns))
            here = (st.st_dev, st.st_ino)
        except OSError:
            here = None
        if here != self.homes.get(ns, here):
            return f"namespace {ns} was deleted (the lab taken down?)"
        try:
            name = s.getsockname()[0]
        except OSError:
            name = ""
        if not name:
            return f"interface {self.iface} of {ns} was deleted (its pod or the lab taken down?)"
        return None

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.socks = {}

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_all(ns: str, s: socket.socket, on_link_error: Callable[[str, int], None]) -> list[Frame]:
    """The frames queued on ``s``. A read that says the device went down or away (LINK_ERRNOS: the socket's pending
    error, said once) is told to ``on_link_error`` and reading goes on: the frames queued before it are still
    there. The same error twice in a row without a frame between ends this read."""
    out: list[Frame] = []
    last_error = 0
    while True:
        try:
            data, anc, _flags, addr = s.recvmsg(SNAPLEN, socket.CMSG_SPACE(16), socket.MSG_TRUNC)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            if exc.errno not in LINK_ERRNOS:
                raise
            if exc.errno != last_error:
                on_link_error(ns, exc.errno)
            if exc.errno == last_error:
                break
            last_error = exc.errno
            continue
        last_error = 0
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
    scapyconf.load()
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
    """A pcap the disk cannot take (full, a quota, a folder gone): one line naming it, not scapy's traceback; exit 3
    for a full disk, 2 for the path given, as every output file."""
    try:
        yield
    except OSError as exc:
        raise output_unwritable(path, exc) from None


def write_pcapng(path: str, frames: list[tuple[Frame, str | None]], vxlan_port: int = 8472) -> int:
    """Write frames to a pcapng file: one interface per ``netns/ifname``, direction and a comment per frame."""
    Ether = scapy_layers(vxlan_port)
    from scapy.utils import PcapNgWriter  # scapy: lazily, see above

    n = 0
    with _writing(path), outfile.open_output(path, kind=PCAP) as fh, PcapNgWriter(os.devnull) as w:
        w.f.close()  # scapy's writer opens its name with open(path, "wb"): the file netlab opened instead
        w.f = fh
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

    if path == "-":  # standard output, as tcpdump -w - (cli.output.check_pcap_file: not a terminal's)
        import io
        import sys

        class Kept(io.BytesIO):
            def close(self) -> None:  # scapy's writer closes its file: the bytes are read after it
                pass

        kept = Kept()
        with PcapWriter(kept, linktype=1) as w:
            for frame in frames:
                pkt = Ether(frame.data)
                pkt.time = frame.ts
                w.write(pkt)
        sys.stdout.flush()
        sys.stdout.buffer.write(kept.getvalue())
        sys.stdout.buffer.flush()
        return len(frames)
    with _writing(path), PcapWriter(outfile.open_output(path, kind=PCAP), linktype=1, sync=True) as w:
        for frame in frames:
            pkt = Ether(frame.data)
            pkt.time = frame.ts
            w.write(pkt)
    return len(frames)


def describe(frame: Frame, vxlan_port: int = 8472, verbose: bool = False) -> str:
    """One line per frame as tcpdump words it (trace/tcpdump.py), after the time and the direction; with
    verbose, every layer (scapy's show())."""
    Ether = scapy_layers(vxlan_port)
    stamp = time.strftime("%H:%M:%S", time.localtime(frame.ts)) + f".{int(frame.ts % 1 * 1e6):06d}"
    line = f"{stamp} {frame.direction:<3} {words(frame, vxlan_port)[0]}"
    if verbose:
        line += "\n" + Ether(frame.data).show(dump=True)
    return line


def words(frame: Frame, vxlan_port: int = 8472, link: bool = True) -> tuple[str, str | None]:
    """The frame's line as the text prints it (without time and direction: -o json's ``summary``) and its DNS
    message's words as that line has them (-o json's ``dns``; None: no DNS message in the frame). ``link=False``:
    without the MACs and the frame's length (tcpdump without -e), as ``netlab trace`` says a frame it saw."""
    scapy_layers(vxlan_port)
    from netlab.trace.tcpdump import frame_words  # imports scapy: lazily, see above

    return frame_words(frame.data, link)


def live(capture: Capture, count: int, timeout: float, on_frame: Callable[[Frame], None],
         on_note: Callable[[str], None] = lambda note: None) -> int:
    """Read frames until ``count`` were seen, ``timeout`` seconds passed or the capture's device or namespace is
    gone (``capture.ended`` says why); return how many. What the reads said of the link goes to ``on_note``."""
    deadline = time.monotonic() + timeout
    seen = 0
    read: list[Frame] = []  # read from the sockets, not yet handed on: a frame leaves it once on_frame is done
    try:
        while seen < count and time.monotonic() < deadline and not capture.ended:
            capture.wait(deadline, read)
            while read and seen < count:
                on_frame(read[0])
                del read[0]
                seen += 1
            while capture.notes:
                on_note(capture.notes.pop(0))
        capture.last_check()
        while capture.notes:
            on_note(capture.notes.pop(0))
    except KeyboardInterrupt:
        # Ctrl-C: the frames read already (a Ctrl-C while one of them was handed on: that one again) and those the
        # kernel had queued on the socket came before it, so they count too. They were lost when it landed while
        # a batch read at once was being handed on (6 of 12 DNS frames on a loaded machine).
        for frame in (read + capture.drain())[:max(0, count - seen)]:
            on_frame(frame)
        raise
    return seen


def frames_in(frames: list[Frame], vxlan_ports: Iterable[int]) -> Iterator[tuple[Frame, Decoded]]:
    ports = tuple(vxlan_ports)
    for f in frames:
        yield f, decode(f.data, ports)


def frame_json(frame: Frame, d: Decoded, vxlan_port: int) -> dict[str, Any]:
    """``capture -o json``'s row of a frame (``d``: it decoded): its own headers' fields, as tcpdump -e shows it,
    the MACs its ``summary`` begins with; a VXLAN packet's are the carrier's, its inner frame's under ``vxlan``'s
    ``inner`` (docs/json.md). ``dns``: the DNS message the frame carries, at whatever depth, as ``summary`` says it."""
    summary, dns = words(frame, vxlan_port)  # the text's line and its DNS words: the same facts
    own: dict[str, Any] = {"src_mac": d.eth_src, "dst_mac": d.eth_dst, "flow": str(d.flow) if d.flow else None,
                           "ttl": d.ttl}
    vxlan = None
    if d.outer is not None and d.outer_eth is not None:
        o = d.outer
        vxlan = {**o, "inner": own}
        own = {"src_mac": d.outer_eth[0], "dst_mac": d.outer_eth[1],
               "flow": str(Flow("udp", o["src"], o["dst"], o["sport"], o["dport"])), "ttl": o["ttl"]}
    return {"ts": frame.ts, "direction": frame.direction, "length": frame.wirelen, "summary": summary,
            "src_mac": own["src_mac"], "dst_mac": own["dst_mac"], "flow": own["flow"], "vxlan": vxlan,
            "ttl": own["ttl"], "dns": dns}
