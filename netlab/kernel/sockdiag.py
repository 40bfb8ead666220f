"""The sockets bound in a namespace, as ``ss -ltun`` lists them: the kernel's sock_diag dump over netlab's codec.

A TCP segment to a port no socket listens on is answered with a reset, and a
UDP datagram to a port no socket is bound to with an ICMP port unreachable:
the packet reached the host, and the host refused it. ``trace`` asks this
dump which sockets the destination has on the packet's port, to say which of
the two it met (kernel/netlink.py's Conn, NETLINK_SOCK_DIAG, one request a
family: ``inet_diag_req_v2`` in, ``inet_diag_msg`` out, as in
``include/uapi/linux/inet_diag.h``).

An IPv6 socket bound to ``::`` takes IPv4 too unless it is IPV6_V6ONLY (the
INET_DIAG_SKV6ONLY attribute of its answer), so the IPv6 dump counts as well.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from netlab.errors import NetnsGone
from netlab.kernel import netlink, netns as nsmod

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
INET_DIAG_SKV6ONLY = 11
TCP_LISTEN = 10
# The TCP states by number (include/net/tcp_states.h) as ss names them; a bound, unconnected UDP socket is CLOSE,
# which ss shows as UNCONN.
STATE_NAMES = {1: "ESTAB", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1", 5: "FIN-WAIT-2", 6: "TIME-WAIT",
               7: "UNCONN", 8: "CLOSE-WAIT", 9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING"}
ALL_STATES = 0xFFFFFFFF
# The TCP states in which a connection has more to send by itself: ESTAB (its server holds a request, or is
# writing the answer), SYN-RECV (a SYN-ACK sent again until acknowledged), FIN-WAIT-1, CLOSING and LAST-ACK (a FIN
# not acknowledged yet), CLOSE-WAIT (the peer closed; this side's FIN is still to come).
SENDING = (1, 3, 4, 8, 9, 11)
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
# inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid: sport, dport (big-endian), src[16],
# dst[16], interface, cookie[2]
REQUEST = struct.Struct("=BBBBI")
SOCKID = struct.Struct("!HH16s16s")
SOCKID_REST = struct.Struct("=III")
# inet_diag_msg: family, state, timer, retrans; the sockid (48 bytes); expires, rqueue, wqueue, uid, inode
ANSWER_HEAD = struct.Struct("=BBBB")
ANSWER_SIZE = ANSWER_HEAD.size + SOCKID.size + SOCKID_REST.size + 5 * 4
QUEUES = struct.Struct("=II")  # expires, rqueue


@dataclass(frozen=True)
class Bound:
    """One socket bound to a local port: its address (``0.0.0.0``, ``::``, or one address) and whether an IPv6
    one takes IPv4 too."""

    family: int
    address: str
    port: int
    state: int
    v6only: bool = False
    # What waits for the socket's owner (rqueue, ss's Recv-Q): a UDP socket's bytes of datagrams not read yet,
    # a listening TCP socket's connections not accepted yet, a connection's bytes not read yet.
    queued: int = 0

    def takes(self, dst: str) -> bool:
        """A packet to IPv4 address ``dst`` on this socket's port reaches it (by its bound address)."""
        if self.family == socket.AF_INET:
            return self.address in ("0.0.0.0", dst)
        if self.v6only:
            return False
        addr = ipaddress.IPv6Address(self.address)
        return addr == ipaddress.IPv6Address("::") or (addr.ipv4_mapped is not None and str(addr.ipv4_mapped) == dst)

    def text(self) -> str:
        """As ss prints it: ``0.0.0.0:80``, ``[::1]:80``, and ``*:80`` for an IPv6 socket on ``::`` that takes
        IPv4 too."""
        if self.family == socket.AF_INET:
            return f"{self.address}:{self.port}"
        return f"*:{self.port}" if self.address == "::" and not self.v6only else f"[{self.address}]:{self.port}"

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, str(self.state))


def dump_request(family: int, proto: str, states: int | None = None) -> bytes:
    """The dump of every socket of that family and protocol: TCP's listening ones, UDP's in any state (a bound,
    unconnected UDP socket is in state CLOSE, as ``ss -lu`` shows it UNCONN); or those in ``states`` (a mask of
    1 << state)."""
    if states is None:
        states = 1 << TCP_LISTEN if proto == "tcp" else ALL_STATES
    body = (REQUEST.pack(family, PROTOCOLS[proto], 0, 0, states) + SOCKID.pack(0, 0, b"", b"")
            + SOCKID_REST.pack(0, 0, 0))
    return netlink.message(SOCK_DIAG_BY_FAMILY, netlink.NLM_F_REQUEST, body)


def parse_answer(body: bytes) -> Bound | None:
    """One ``inet_diag_msg`` (and its attributes); None when it is too short to be one."""
    if len(body) < ANSWER_SIZE:
        return None
    family, state, _, _ = ANSWER_HEAD.unpack_from(body, 0)
    sport, _, src, _ = SOCKID.unpack_from(body, ANSWER_HEAD.size)
    if family == socket.AF_INET:
        address = socket.inet_ntop(socket.AF_INET, src[:4])
    elif family == socket.AF_INET6:
        address = socket.inet_ntop(socket.AF_INET6, src)
    else:
        return None
    _, queued = QUEUES.unpack_from(body, ANSWER_HEAD.size + SOCKID.size + SOCKID_REST.size)
    extra = netlink.attrs(body, ANSWER_SIZE)
    v6only = bool(netlink.get_u8(extra, INET_DIAG_SKV6ONLY, 0))
    return Bound(family, address, sport, state, v6only, queued)


def bound(conn: netlink.Conn, proto: str) -> list[Bound] | None:
    """The ``proto`` sockets bound in the namespace ``conn`` was opened in (a NETLINK_SOCK_DIAG Conn): TCP's
    listening, UDP's all, IPv4 and IPv6. None when the kernel cannot list IPv4's (no inet_diag, or no
    tcp_diag/udp_diag, a module not loaded): nothing is known then."""
    return _dump(conn, proto)


def sending(conn: netlink.Conn) -> list[Bound] | None:
    """The TCP connections in the namespace ``conn`` was opened in that have more to send by themselves
    (:data:`SENDING`), IPv4 and IPv6, each by its local address and port; None as :func:`bound`."""
    return _dump(conn, "tcp", sum(1 << s for s in SENDING))


def listening_or_sending(conn: netlink.Conn) -> list[Bound] | None:
    """:func:`bound`'s TCP sockets and :func:`sending`'s, in one dump (state TCP_LISTEN tells them apart): the
    kernel walks every socket of the machine for each dump, whatever its namespace."""
    return _dump(conn, "tcp", (1 << TCP_LISTEN) | sum(1 << s for s in SENDING))


def _dump(conn: netlink.Conn, proto: str, states: int | None = None) -> list[Bound] | None:
    out: list[Bound] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            msgs = conn.dump(f"the {proto} sockets (sock_diag)", dump_request(family, proto, states))
        except netlink.NetlinkError:
            if family == socket.AF_INET:
                return None
            continue  # a kernel without IPv6: no IPv6 socket to list
        out += [b for b in (parse_answer(m.body) for m in msgs) if b is not None]
    return out


def bound_in(netns: str, proto: str, timeout: float = netlink.DEFAULT_TIMEOUT) -> list[Bound] | None:
    """The ``proto`` sockets bound in namespace ``netns`` (:func:`bound`); None when this kernel cannot list
    them. NetnsGone when the namespace is gone."""
    try:
        with nsmod.entered(netns):  # the socket asks the namespace it was opened in
            conn = netlink.Conn(NETLINK_SOCK_DIAG, timeout=timeout)
    except NetnsGone:
        raise
    except OSError:  # no sock_diag in this kernel
        return None
    with conn:
        return bound(conn, proto)


def on_port(sockets: list[Bound], port: int) -> list[Bound]:
    return [s for s in sockets if s.port == port]
