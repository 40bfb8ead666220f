"""The agent's sockets: opened inside the lab's namespaces, so no probe can leave the lab.

A socket keeps the namespace it was opened in. So the agent enters a source
namespace (``setns``), opens what it needs there, and comes back; one epoll
loop then drives the sockets of every namespace at once (a process per
namespace costs 50 s for 50 pods, this well under a second):

- per source namespace, once (:class:`NsSockets`): a raw ICMP socket, with an
  ICMP_FILTER so the kernel hands it only echo replies and errors; one UDP
  socket for every plain UDP probe; a netlink socket for the neighbour table
  (neighbours.py, budget.py);
- per probe: a TCP socket (:func:`tcp_socket`: a real kernel connection,
  closed with RST), and a UDP socket of its own for each Service probe
  (:func:`udp_socket`), made in the source namespace the same way.

Service probes and conntrack: after a Service's DNAT, two flows from one
client port to two Service addresses with a common endpoint share a reply
tuple, and conntrack rewrites the second one's source port (the kernel's
connect() does reuse a port towards another address, and a closed flow stays
in conntrack for a while: UDP 30 to 120 s, so a flow of one run meets the
next run's). So Service probes bind an explicit source port from a range of
their own, above the namespace's ephemeral range (32768-60999, the kernel's
default in every new namespace): the pod matrix's kernel-chosen ports never
meet a DNATed flow of the prober's, and its "no port translation" check stays
exact (:func:`bind_service_port`). Within that range, one process takes the
ports in turn from a random start, never at random each time: two Service flows
of one pod from the same port towards two Service addresses with an endpoint in
common (a ClusterIP and a NodePort, say) also share a reply tuple, and
conntrack then moves the second one to a port of its choosing anywhere in
1024-65535, where a later direct flow of the matrix that the kernel gives that
port meets it ("source port translated": a flake of the suite's break tests).
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import struct
from typing import Container

from netlab.kernel import netlink, sockdiag
from netlab.kernel import netns as nsmod
from netlab.probe import neigh_watch

SOL_RAW = 255
ICMP_FILTER = 1
# ICMP types the raw sockets receive: echo reply, destination unreachable, time exceeded.
ICMP_WANTED = (0, 3, 11)
SIOCGIFADDR, SIOCGIFHWADDR = 0x8915, 0x8927
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
LINGER_RST = struct.pack("ii", 1, 0)  # close() sends RST: nothing is left to resolve later
SERVICE_PORTS = (61000, 65535)  # source ports of Service probes: above the default ephemeral 32768-60999
_service_next: tuple[int, int] | None = None  # (this process, the offset in SERVICE_PORTS its next bind tries first)
NEIGH_TIMEOUT = 2.0  # seconds a neighbour dump may take


class NsSockets:
    """The sockets of one namespace, opened once; ``idx`` numbers the namespace in the worker."""

    def __init__(self, name: str, idx: int, home_fd: int, probing: bool = True):
        self.name, self.idx = name, idx
        self.held = nsmod.Held(name, home_fd)
        self.raw: socket.socket | None = None
        self.udp: socket.socket | None = None
        self.udp_port = 0
        self.ifindex: dict[str, int | None] = {}
        with self.held:
            if probing:
                self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                         socket.IPPROTO_ICMP)
                mask = 0xFFFFFFFF
                for t in ICMP_WANTED:
                    mask &= ~(1 << t)
                self.raw.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", mask))
                _bufs(self.raw)
                self.udp = socket.socket(socket.AF_INET,
                                         socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                _bufs(self.udp)
                self.udp.bind(("0.0.0.0", 0))
                self.udp_port = self.udp.getsockname()[1]
            # Neighbour requests go out without NLM_F_ACK, with sequence number 0: the
            # socket's own dumps never use 0, so the kernel's error answers to them
            # (entry exists, no such entry) are never taken for a dump's messages.
            self.nl = netlink.Conn(timeout=NEIGH_TIMEOUT)
        self.diag: netlink.Conn | None = None  # sock_diag, opened on first use (waiting())

    def sources_for(self, dsts: list[str]) -> dict[str, str | None]:
        """The address the kernel sends from towards each dst: connect a fresh UDP socket (that
        sends nothing) and read its local address. Fresh each time: a connected socket keeps
        the first source address it was given."""
        out: dict[str, str | None] = {}
        with self.held:
            for dst in dsts:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                    try:
                        s.connect((dst, 9))  # the discard port: any would do, nothing is sent
                        out[dst] = s.getsockname()[0]
                    except OSError:
                        out[dst] = None
        return out

    def address_of(self, ifname: str) -> str | None:
        """IPv4 address of an interface, read inside this namespace (ioctl on a socket that lives here)."""
        res = self._ifreq(SIOCGIFADDR, ifname)
        return socket.inet_ntoa(res[20:24]) if res else None

    def mac_of(self, ifname: str) -> bytes | None:
        res = self._ifreq(SIOCGIFHWADDR, ifname)
        return res[18:24] if res else None

    def _ifreq(self, request: int, ifname: str) -> bytes | None:
        with self.held:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                try:
                    return fcntl.ioctl(s.fileno(), request, struct.pack("256s", ifname.encode()))
                except OSError:
                    return None

    def index(self, ifname: str) -> int | None:
        if ifname not in self.ifindex:
            with self.held:
                try:
                    self.ifindex[ifname] = socket.if_nametoindex(ifname)
                except OSError:
                    self.ifindex[ifname] = None
        return self.ifindex[ifname]

    def waiting(self, ports: Container[int]) -> int:
        """What the namespace's servers on ``ports`` have received and not answered yet (sock_diag): bytes of UDP
        datagrams not read, TCP connections not accepted, and each accepted connection that has more to send
        (sockdiag.SENDING: an answer the server has not written, a FIN not sent or not acknowledged). Each
        packet of theirs, when it goes, resolves its client's address again. 0 when the kernel cannot list
        sockets."""
        try:
            if self.diag is None:
                with self.held:  # a socket asks the namespace it was opened in
                    self.diag = netlink.Conn(sockdiag.NETLINK_SOCK_DIAG, timeout=NEIGH_TIMEOUT)
            found = sockdiag.bound(self.diag, "udp") or []
            tcp = sockdiag.listening_or_sending(self.diag) or []  # one dump: each dump walks the machine's sockets
        except OSError:
            return 0
        found += [b for b in tcp if b.state == sockdiag.TCP_LISTEN]
        talking = [b for b in tcp if b.state != sockdiag.TCP_LISTEN]
        return sum(b.queued for b in found if b.port in ports) + sum(1 + b.queued for b in talking if b.port in ports)

    def neigh_reports(self) -> socket.socket:
        """A socket in this namespace that the kernel tells each change of a neighbour entry (neigh_watch.py)."""
        with self.held:
            return neigh_watch.neigh_socket()

    def close(self) -> None:
        for s in (self.raw, self.udp, self.nl, self.diag):
            if s is not None:
                s.close()
        self.held.close()


def tcp_socket() -> socket.socket:
    """A non-blocking TCP socket in the calling thread's namespace, that closes with RST."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    return s


def udp_socket() -> socket.socket:
    """A non-blocking UDP socket in the calling thread's namespace, for one probe."""
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)


def _bufs(s: socket.socket) -> None:
    for opt, force, size in ((socket.SO_SNDBUF, SO_SNDBUFFORCE, 4 << 20), (socket.SO_RCVBUF, SO_RCVBUFFORCE, 8 << 20)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, size)  # past net.core.*mem_max (root)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, size)


def bind_service_port(s: socket.socket, avoid: Container[int] = ()) -> None:
    """Bind a free source port from SERVICE_PORTS: an explicit port, above the namespace's ephemeral range.

    Not ``IP_LOCAL_PORT_RANGE``: the kernel only lets a socket *narrow* its
    namespace's ``ip_local_port_range`` (inet_sk_get_local_port_range ignores a
    per-socket bound outside it), so a range above 60999 silently gave ordinary
    ephemeral ports, shared with the pod matrix's flows. An explicit bind may use
    any port; the kernel never picks one outside the namespace's range itself.
    ``avoid``: ports not to take (those conntrack still holds a flow of, for a trace).
    """
    global _service_next
    lo, hi = SERVICE_PORTS
    span = hi - lo + 1
    if _service_next is None or _service_next[0] != os.getpid():  # a forked worker starts a turn of its own
        _service_next = (os.getpid(), random.randrange(span))
    start = _service_next[1]
    for k in range(span):
        if lo + (start + k) % span in avoid:
            continue
        try:
            s.bind(("0.0.0.0", lo + (start + k) % span))
            _service_next = (os.getpid(), (start + k + 1) % span)
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free source port in {lo}-{hi} for a Service probe")
