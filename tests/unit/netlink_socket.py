"""A netlink socket's stand-in for the unit tests of netlab's netlink codec (kernel/netlink.py, rtnl.py): the
answers a test queues come back one datagram per read, as the kernel sends them."""

from __future__ import annotations

import errno
import struct

from netlab.kernel import netlink as nl


class QueuedSocket:
    """A subclass's ``send`` queues the answers; ``recv_into`` hands them out."""

    def __init__(self) -> None:
        self.queue: list[bytes] = []

    def _error(self, seq: int, code: int) -> None:
        """The kernel's NLMSG_ERROR for request ``seq``: its errno, or 0, an ACK."""
        body = struct.pack("=i", -code) + bytes(16)
        self.queue.append(nl.HDR.pack(16 + len(body), nl.NLMSG_ERROR, 0, seq, 0) + body)

    def recv_into(self, buffer: memoryview, nbytes: int = 0, flags: int = 0) -> int:
        # one datagram, cut to the buffer as the kernel does; none queued: EAGAIN, as MSG_DONTWAIT gets it
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "no answer yet")
        data = self.queue.pop(0)[:len(buffer)]
        buffer[:len(data)] = data
        return len(data)

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass
