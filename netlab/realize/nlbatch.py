"""Batched netlink: many requests in one send(), acknowledgements read after.

pyroute2's synchronous API waits for each answer through an asyncio loop
(~0.5 ms a call). Creating a big lab is thousands of requests whose
answers we do not need one by one, so, like ``ip -batch``, netlab encodes
them with pyroute2's ``IPBatch`` (the same arguments as ``IPRoute``), sends
each namespace's requests at once on a socket opened in that namespace, and
then reads one ACK per request. The first error is reported with the object
it was about.

Links in a *fresh* namespace get interface indexes chosen in advance
(``ip link add ... index N``), so later requests can name them without a
lookup: the kernel honours a requested index when it is free, and in a new
namespace it is.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Callable

from pyroute2 import IPBatch
from pyroute2.netlink.exceptions import NetlinkError

NLMSG_ERROR = 2
NLMSG_HDR = struct.Struct("=IHHII")
CHUNK = 128 * 1024
RTM_NEWLINK = 16
RTM_SETLINK = 19
NLM_F_CREATE = 0x400
NLM_F_EXCL = 0x200
NLM_F_REQUEST = 1
NLM_F_ACK = 4
AF_BRIDGE = 7
IFLA_PROTINFO = 12
IFLA_BRPORT_MODE = 4
NLA_F_NESTED = 0x8000  # stay well below the socket's send buffer


class BatchError(Exception):
    def __init__(self, what: str, code: int):
        super().__init__(f"{what}: {os.strerror(code)}")
        self.what, self.code = what, code


class Batch:
    """Requests for one namespace, encoded now, sent by :meth:`send`."""

    def __init__(self) -> None:
        self._ipb = IPBatch()
        self._what: dict[int, str] = {}  # sequence number -> object, for errors
        self._bounds: list[int] = []  # message end offsets, to cut chunks
        self.fds: list[int] = []  # namespace fds referenced by requests
        self._raw_seq = 1 << 30  # our own messages' sequence numbers, apart from IPBatch's

    def __len__(self) -> int:
        return len(self._what)

    def add(self, what: str, method: str, *args, **kwargs) -> None:
        """Encode one request, e.g. ``add("cni0", "link", "add", ifname="cni0", kind="bridge")``."""
        start = len(self._ipb.batch)
        getattr(self._ipb, method)(*args, **kwargs)
        data = self._ipb.batch
        off = start
        while off < len(data):
            length, _, _, seq, _ = NLMSG_HDR.unpack_from(data, off)
            self._what[seq] = what
            off += (length + 3) & ~3
            self._bounds.append(off)

    def add_veth(self, what: str, index: int, ifname: str, mac: str, mtu: int, group: int, master: int | None,
                 peer_index: int, peer_name: str, peer_mac: str, peer_netns_fd: int) -> None:
        """RTM_NEWLINK for a veth pair with both interface indexes chosen.

        pyroute2's ``peer={...}`` keywords become attributes only, so the
        peer's index (a field of its ifinfomsg header) is set here directly.
        """
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        msg = ifinfmsg()
        msg["index"] = index
        msg["flags"] = msg["change"] = 1  # IFF_UP
        attrs = [("IFLA_IFNAME", ifname), ("IFLA_ADDRESS", mac), ("IFLA_MTU", mtu), ("IFLA_GROUP", group)]
        if master is not None:
            attrs.append(("IFLA_MASTER", master))
        peer = {"index": peer_index, "attrs": [("IFLA_IFNAME", peer_name), ("IFLA_ADDRESS", peer_mac),
                                               ("IFLA_MTU", mtu), ("IFLA_NET_NS_FD", peer_netns_fd)]}
        attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                                  ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}))
        msg["attrs"] = attrs
        self._raw_seq += 1
        msg["header"]["type"] = RTM_NEWLINK
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        msg["header"]["sequence_number"] = self._raw_seq
        msg.encode()
        self._ipb.batch += msg.data
        self._what[self._raw_seq] = what
        self._bounds.append(len(self._ipb.batch))

    def add_hairpin(self, what: str, index: int) -> None:
        """``bridge link set dev X hairpin on``: RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO{BRPORT_MODE=1}.

        Encoded by hand: the kernel reads IFLA_PROTINFO as nested only with
        NLA_F_NESTED set (otherwise as the old one-byte STP state), which
        pyroute2's encoder does not set.
        """
        self._raw_seq += 1
        seq = self._raw_seq
        nested = struct.pack("=HHB3x", 5, IFLA_BRPORT_MODE, 1)
        protinfo = struct.pack("=HH", 4 + len(nested), IFLA_PROTINFO | NLA_F_NESTED) + nested
        body = struct.pack("=BxHiII", AF_BRIDGE, 0, index, 0, 0) + protinfo
        msg = NLMSG_HDR.pack(16 + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
        self._ipb.batch += msg
        self._what[seq] = what
        self._bounds.append(len(self._ipb.batch))

    def netns_fd(self, path: str) -> int:
        """An fd for IFLA_NET_NS_FD, kept open until the batch is sent."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def send(self, sock: socket.socket) -> None:
        """Send everything, read every ACK; raise BatchError for the first failure."""
        data = bytes(self._ipb.batch)
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
                count = _count_messages(data, start, end)
                failure = _read_acks(sock, count, pending) or failure
                start = end
            if failure:
                raise failure
        finally:
            for fd in self.fds:
                os.close(fd)
            self.fds.clear()
            self._ipb.reset()
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


def raise_as_netlink(exc: BatchError) -> NetlinkError:
    return NetlinkError(exc.code, str(exc))


def bound_socket(opener: Callable[[], socket.socket]) -> socket.socket:
    sock = opener()
    sock.bind((0, 0))
    return sock


__all__ = ["Batch", "BatchError", "bound_socket", "errno"]
