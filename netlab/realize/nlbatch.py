"""Batched netlink: many requests in one send(), acknowledgements read after.

pyroute2's synchronous API waits for each answer through an asyncio loop
(~0.5 ms a call). Creating a big lab is thousands of requests whose answers
we do not need one by one, so, like ``ip -batch``, netlab encodes them
(nlmsg.py), sends each namespace's requests at once on a socket opened in
that namespace, and then reads one ACK per request. The first error is
reported with the object it was about.

Links in a *fresh* namespace get interface indexes chosen in advance
(``ip link add ... index N``), so later requests can name them without a
lookup: the kernel honours a requested index when it is free, and in a new
namespace it is.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Callable

from netlab.realize import nlmsg

NLMSG_ERROR = 2
NLMSG_HDR = struct.Struct("=IHHII")
CHUNK = 64 * 1024  # per send(): well below the send buffer, and its ACKs fit the receive buffer


class BatchError(Exception):
    def __init__(self, what: str, code: int):
        super().__init__(f"{what}: {os.strerror(code)}")
        self.what, self.code = what, code


class Batch:
    """Requests for one namespace, encoded now, sent by :meth:`send`."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._what: dict[int, str] = {}  # sequence number -> object, for errors
        self._bounds: list[int] = []  # message end offsets, to cut chunks
        self.fds: list[int] = []  # namespace fds referenced by requests
        self._seq = 0

    def __len__(self) -> int:
        return len(self._what)

    def add(self, what: str, build: Callable[..., bytes], *args) -> None:
        """Encode one request: ``add("cni0 up", nlmsg.link_up, index)`` (the sequence number is ours)."""
        self._seq += 1
        self._data += build(self._seq, *args)
        self._what[self._seq] = what
        self._bounds.append(len(self._data))

    def netns_fd(self, path: str) -> int:
        """An fd for IFLA_NET_NS_FD, kept open until the batch is sent."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def send(self, sock: socket.socket) -> None:
        """Send everything, read every ACK; raise BatchError for the first failure."""
        data = bytes(self._data)
        try:
            start = 0
            pending = dict(self._what)
            failure: BatchError | None = None
            while start < len(data):
                end = start
                for bound in self._bounds:
                    if bound > end and bound - start <= CHUNK:
                        end = bound
                if end == start:
                    end = next(b for b in self._bounds if b > start)
                sock.send(data[start:end])
                # Read the ACKs of this chunk before sending more.
                failure = _read_acks(sock, _count_messages(data, start, end), pending) or failure
                start = end
            if failure:
                raise failure
        finally:
            for fd in self.fds:
                os.close(fd)
            self.fds.clear()
            self._data = bytearray()
            self._what.clear()
            self._bounds.clear()


def _count_messages(data: bytes, start: int, end: int) -> int:
    count, off = 0, start
    while off < end:
        length = NLMSG_HDR.unpack_from(data, off)[0]
        off += (length + 3) & ~3
        count += 1
    return count


def _read_acks(sock: socket.socket, count: int, pending: dict[int, str]) -> BatchError | None:
    failure = None
    while count > 0:
        buf = sock.recv(1 << 20)
        off = 0
        while off < len(buf):
            length, mtype, _, seq, _ = NLMSG_HDR.unpack_from(buf, off)
            if mtype == NLMSG_ERROR:
                code = -struct.unpack_from("=i", buf, off + 16)[0]
                what = pending.pop(seq, "?")
                count -= 1
                if code and failure is None:
                    failure = BatchError(what, code)
            off += (length + 3) & ~3
            if length == 0:
                break
    return failure


SO_RCVBUFFORCE = 33
NETLINK_CAP_ACK = 10
SOL_NETLINK = 270


def send_here(batch: Batch) -> None:
    """Send a batch on a new socket in the calling thread's namespace.

    The ACKs of a chunk queue up before we read them: a big receive buffer
    (forced past net.core.rmem_max, we are root) and NETLINK_CAP_ACK (ACKs
    without a copy of the request) keep them from overflowing (ENOBUFS).
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))
        batch.send(sock)
    finally:
        sock.close()


__all__ = ["Batch", "BatchError", "nlmsg", "send_here"]
