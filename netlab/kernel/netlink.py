"""The netlink wire: messages, attributes, and a socket whose every wait is bounded.

A netlink message is ``nlmsghdr`` (length, type, flags, sequence, port) + a
fixed family header (ifinfomsg, rtmsg, ndmsg, nfgenmsg ...) + attributes,
each a type-length-value padded to 4 bytes; nested attributes hold more
attributes. This module knows only that shape. What the fields mean is in
rtnl.py and rtnl_parse.py (routing: links, addresses, routes, neighbours,
rules) and nfnl.py (conntrack, nf_tables).

:class:`Conn` is one socket in one namespace. Requests go out in batches, like
``ip -batch``: many messages in one ``send()``, then one acknowledgement read
per request. The kernel handles every message of a ``send()`` even after one
of them failed, so :meth:`Conn.batch` reports the outcome of each request
and stops sending further chunks at the first failure. Every read has a
deadline: a lost acknowledgement (ENOBUFS on a full receive buffer) is a
:class:`NetlinkTimeout`, never a hang.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from netlab.kernel import fdwait

# linux/netlink.h
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO, NLM_F_DUMP_INTR = 0x1, 0x2, 0x4, 0x8, 0x10
NLM_F_ROOT, NLM_F_MATCH = 0x100, 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF
NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12
SO_RCVBUFFORCE = 33

HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLA = struct.Struct("=HH")  # len, type

CHUNK = 64 * 1024  # bytes per send(): its acknowledgements fit the receive buffer
RECV_MAX = 1 << 20  # bytes of one answer at most (a dump's part is 32 KiB or so; room for any the kernel makes)
DEFAULT_TIMEOUT = 10.0  # seconds a batch chunk or a dump may take before it is a failure


class NetlinkError(OSError):
    """The kernel refused a request: ``errno`` and what the request was about."""

    def __init__(self, code: int, what: str = ""):
        super().__init__(code, os.strerror(code))
        self.what = what

    def __str__(self) -> str:
        return f"{self.what}: {os.strerror(self.errno)}" if self.what else os.strerror(self.errno)


class NetlinkTimeout(NetlinkError):
    """The kernel's answer did not come within the deadline (lost, or the kernel is stuck)."""

    def __init__(self, what: str, seconds: float):
        super().__init__(errno.ETIMEDOUT, what)
        self.seconds = seconds

    def __str__(self) -> str:
        return f"{self.what}: no answer from the kernel within {self.seconds:g} s"


# --- encoding -------------------------------------------------------------------


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def be16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!H", value))


def be32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!I", value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def mac(kind: int, value: str) -> bytes:
    return attr(kind, bytes.fromhex(value.replace(":", "")))


def ipv4(kind: int, value: str) -> bytes:
    return attr(kind, socket.inet_aton(str(value)))


def ipv6(kind: int, value: str) -> bytes:
    return attr(kind, socket.inet_pton(socket.AF_INET6, str(value)))


def message(mtype: int, flags: int, body: bytes, seq: int = 0) -> bytes:
    """One request (NLM_F_REQUEST is always set; add NLM_F_ACK to be answered on success too)."""
    return HDR.pack(16 + len(body), mtype, NLM_F_REQUEST | flags, seq, 0) + body


def with_seq(msg: bytes, seq: int) -> bytes:
    """The same message with another sequence number (the header's 4th field)."""
    return msg[:8] + struct.pack("=I", seq) + msg[12:]


# --- decoding -------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    """One message from the kernel: its type, flags and payload (after the header)."""

    mtype: int
    flags: int
    seq: int
    body: bytes


def split(buf: bytes) -> Iterator[Msg]:
    """The messages in one datagram."""
    off = 0
    while off + 16 <= len(buf):
        length, mtype, flags, seq, _ = HDR.unpack_from(buf, off)
        if length < 16 or off + length > len(buf):
            return
        yield Msg(mtype, flags, seq, bytes(buf[off + 16:off + length]))
        off += (length + 3) & ~3


def attrs(data: bytes, off: int = 0) -> dict[int, bytes]:
    """Attributes from ``off`` on, by type (nested/byte-order flags stripped; the last of a type wins)."""
    out: dict[int, bytes] = {}
    end = len(data)
    while off + 4 <= end:
        length, kind = NLA.unpack_from(data, off)
        if length < 4 or off + length > end:
            break
        out[kind & NLA_TYPE_MASK] = data[off + 4:off + length]
        off += (length + 3) & ~3
    return out


def attr_list(data: bytes, off: int = 0) -> list[tuple[int, bytes]]:
    """Attributes in order, repeats kept (for lists such as nested multipath hops)."""
    out: list[tuple[int, bytes]] = []
    end = len(data)
    while off + 4 <= end:
        length, kind = NLA.unpack_from(data, off)
        if length < 4 or off + length > end:
            break
        out.append((kind & NLA_TYPE_MASK, data[off + 4:off + length]))
        off += (length + 3) & ~3
    return out


def get_u8(a: dict[int, bytes], kind: int, default: int | None = None) -> int | None:
    v = a.get(kind)
    return v[0] if v else default


def get_u16(a: dict[int, bytes], kind: int, default: int | None = None) -> int | None:
    v = a.get(kind)
    return struct.unpack_from("=H", v)[0] if v and len(v) >= 2 else default


def get_be16(a: dict[int, bytes], kind: int, default: int | None = None) -> int | None:
    v = a.get(kind)
    return struct.unpack_from("!H", v)[0] if v and len(v) >= 2 else default


def get_u32(a: dict[int, bytes], kind: int, default: int | None = None) -> int | None:
    v = a.get(kind)
    return struct.unpack_from("=I", v)[0] if v and len(v) >= 4 else default


def get_be32(a: dict[int, bytes], kind: int, default: int | None = None) -> int | None:
    v = a.get(kind)
    return struct.unpack_from("!I", v)[0] if v and len(v) >= 4 else default


def get_str(a: dict[int, bytes], kind: int) -> str | None:
    v = a.get(kind)
    return v.split(b"\0", 1)[0].decode(errors="replace") if v is not None else None


def get_ipv4(a: dict[int, bytes], kind: int) -> str | None:
    v = a.get(kind)
    return socket.inet_ntoa(v[:4]) if v and len(v) >= 4 else None


def get_mac(a: dict[int, bytes], kind: int) -> str | None:
    v = a.get(kind)
    return ":".join(f"{b:02x}" for b in v) if v is not None else None


def error_code(body: bytes) -> int:
    """The errno of an NLMSG_ERROR payload (0 is an acknowledgement)."""
    return -struct.unpack_from("=i", body)[0]


# --- the socket -----------------------------------------------------------------


class Conn:
    """A netlink socket opened in the calling thread's namespace (it keeps that namespace).

    ``batch`` and ``dump`` never wait longer than their deadline.
    """

    def __init__(self, proto: int = NETLINK_ROUTE, sock: socket.socket | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, proto)
            try:
                # Acknowledgements queue up while a chunk is processed: a big
                # buffer (forced past net.core.rmem_max; we are root) and
                # NETLINK_CAP_ACK (no copy of the request in each answer).
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            sock.bind((0, 0))
        self.sock = sock
        self._seq = int.from_bytes(os.urandom(2), "little") << 8

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def _recv(self, deadline: float, what: str) -> bytes:
        # The kernel answers rtnetlink requests inside the send that carries them: the answers to a batch are
        # queued by the time it returns, so a read is tried first and waited for only when nothing is there (a
        # poll before each of a 500-pod up's ~5,000 answers: ~1.4 us of CPU apiece, docs/performance.md).
        view = _recv_buffer()
        try:
            try:
                size = self.sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not _readable(self.sock, left):
                    raise NetlinkTimeout(what, self.timeout) from None
                size = self.sock.recv_into(view)
            return bytes(view[:size])
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:  # the kernel dropped answers: we cannot know which
                raise NetlinkError(errno.ENOBUFS, f"{what} (netlink answers were lost)") from None
            raise

    def batch(self, requests: Sequence[tuple[str, bytes]]) -> list[int]:
        """Send ``(what, message)`` requests (each gets NLM_F_ACK); returns one errno per request sent.

        Stops after the chunk in which the first failure happened: requests
        after that chunk are not sent (their entry is absent from the result).
        Raises NetlinkTimeout/NetlinkError when answers are lost; the caller
        then cannot know the outcome of the chunk in flight.
        """
        results: list[int] = []
        i = 0
        while i < len(requests):
            chunk: list[bytes] = []
            seqs: dict[int, int] = {}
            size = 0
            while i < len(requests) and (not chunk or size + len(requests[i][1]) <= CHUNK):
                seq = self._next_seq()
                data = requests[i][1]
                flags = struct.unpack_from("=H", data, 6)[0] | NLM_F_ACK
                msg = data[:6] + struct.pack("=HI", flags, seq) + data[12:]
                chunk.append(msg)
                seqs[seq] = i
                size += len(msg)
                i += 1
            first = len(results)
            results += [-1] * len(chunk)
            self.sock.send(b"".join(chunk))
            deadline = time.monotonic() + self.timeout
            pending = len(chunk)
            what = requests[first][0] if len(chunk) == 1 else f"{requests[first][0]} (+{len(chunk) - 1} more)"
            while pending:
                for m in split(self._recv(deadline, what)):
                    if m.mtype == NLMSG_ERROR and m.seq in seqs:
                        results[seqs.pop(m.seq)] = error_code(m.body)
                        pending -= 1
            if any(code for code in results[first:]):
                break
        return results

    def request(self, what: str, msg: bytes) -> None:
        """One request; raises NetlinkError on failure."""
        (code,) = self.batch([(what, msg)])
        if code:
            raise NetlinkError(code, what)

    def dump(self, what: str, msg: bytes) -> list[Msg]:
        """A dump request (NLM_F_DUMP is added); every message until NLMSG_DONE.

        An interrupted dump (NLM_F_DUMP_INTR: the table changed meanwhile) is
        asked again, a bounded number of times.
        """
        for _ in range(5):
            seq = self._next_seq()
            flags = struct.unpack_from("=H", msg, 6)[0] | NLM_F_DUMP
            self.sock.send(msg[:6] + struct.pack("=HI", flags, seq) + msg[12:])
            deadline = time.monotonic() + self.timeout
            out: list[Msg] = []
            interrupted = False
            done = False
            while not done:
                for m in split(self._recv(deadline, what)):
                    if m.seq != seq:
                        continue
                    if m.flags & NLM_F_DUMP_INTR:
                        interrupted = True
                    if m.mtype == NLMSG_DONE:
                        done = True
                        break
                    if m.mtype == NLMSG_ERROR:
                        code = error_code(m.body)
                        if code:
                            raise NetlinkError(code, what)
                        done = True
                        break
                    out.append(m)
            if not interrupted:
                return out
        raise NetlinkError(errno.EINTR, f"{what} (the table kept changing while it was read)")

    def get(self, what: str, msg: bytes) -> Msg:
        """A request answered by one message (RTM_GETLINK of one link ...)."""
        seq = self._next_seq()
        self.sock.send(msg[:8] + struct.pack("=I", seq) + msg[12:])
        deadline = time.monotonic() + self.timeout
        while True:
            for m in split(self._recv(deadline, what)):
                if m.seq != seq:
                    continue
                if m.mtype == NLMSG_ERROR:
                    raise NetlinkError(error_code(m.body) or errno.EPROTO, what)
                return m


_RECV = threading.local()


def _recv_buffer() -> memoryview:
    """The calling thread's buffer for one answer, RECV_MAX bytes, made once.

    ``sock.recv(RECV_MAX)`` would make a new buffer of a mebibyte for each
    answer, past glibc's mmap threshold: an mmap, an mremap to the answer's
    size and an munmap per answer, 15 us; twice that per dump (its entries,
    then NLMSG_DONE), where the whole dump of a pod's routes takes 30 us."""
    view = getattr(_RECV, "view", None)
    if view is None:
        view = _RECV.view = memoryview(bytearray(RECV_MAX))
    return view


def _readable(sock: socket.socket, timeout: float) -> bool:
    """``sock`` has something to read within ``timeout`` seconds (poll: a process holding a socket per namespace of
    a 1,000-pod lab has descriptors past select's 1,024)."""
    return fdwait.readable(sock, timeout)


def queued(sock: socket.socket) -> Iterator[bytes | None]:
    """The datagrams a netlink socket holds now, without waiting (a multicast group's notifications); None where
    the kernel dropped some (ENOBUFS: its receive buffer was full)."""
    while True:
        try:
            data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            yield None
            continue
        if not data:
            return
        yield data


def drain(sock: socket.socket) -> int:
    """Read and drop what the kernel queued on a netlink socket, without waiting; returns the bytes read.

    For requests sent without NLM_F_ACK (the prober's neighbour and conntrack
    deletions, thousands a run): the kernel still answers the ones that fail
    ("no such entry"), and those answers must not fill the receive buffer.
    """
    n = 0
    while True:
        try:
            data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except OSError:  # EAGAIN: nothing left (or a socket that cannot be read: nothing to drop either)
            return n
        if not data:
            return n
        n += len(data)
