"""The marked packet: one real packet, sent from a socket inside the source namespace.

It is real traffic the kernel handles like any other:

- ICMP: an echo request from a raw socket, with a random id and the payload
  ``netlab-trace <nonce>``;
- TCP: a kernel connection (``connect`` from a random source port), closed with
  a reset as soon as the handshake ends or the time is up;
- UDP: one datagram carrying the marker, from a random source port (to port
  53 a real DNS query that carries it, see dns.py).

The random port lies above the namespace's ephemeral range (61000-65535, as the
prober's Service probes' ports), where a later kernel-chosen port never meets it,
and is none that the lab's NAT namespaces still hold a flow to the destination
from: an earlier trace's unanswered SYN stays in conntrack for 120 s, and a
packet from its port would follow that entry, not the nat table (run.py).

Nothing is sent from or to the host's namespace: the socket is opened inside
the source pod or node (``setns``, open, back), addressed to a lab address.
The reply is waited for on that same socket, for a bounded time.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Container

from netlab.errors import UsageError
from netlab.kernel import fdwait, netns as nsmod
from netlab.probe.icmp import DEST_UNREACH, TIME_EXCEEDED, checksum, icmp_words
from netlab.probe.sockets import bind_service_port
from netlab.trace.decode import ip_text


# <linux/in.h>; Python's socket module names them only from 3.12
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2


@dataclass
class Sent:
    """The marked packet: what was sent and what came back to its socket."""

    proto: str
    src: str | None  # source address when the socket knows it (TCP/UDP), else None: the kernel's choice
    sport: int  # TCP/UDP source port; ICMP echo id
    marker: bytes
    reply: bool = False
    reply_text: str | None = None
    reply_data: bytes | None = None  # a UDP reply's bytes
    error: str | None = None
    refused: bool = False  # the destination's kernel refused it: a TCP reset, or an ICMP port unreachable to UDP
    # an ICMP echo answered with a port unreachable, or refused on its way out (EPERM): a rule's reject, if the walk
    # names one (cluster-ips-check, trace/refusal.py); a DROP refuses a send so too, and the walk names none
    rejected: bool = False
    too_big: bool = False  # refused by the kernel as it was sent: bigger than the path MTU, with DF (EMSGSIZE)
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


def marker_of(nonce: str) -> bytes:
    return f"netlab-trace {nonce}".encode()


def send_marked(netns: str, proto: str, dst: str, dport: int | None, nonce: str,
                payload: bytes | None = None, size: int = 0, sport: int = 0, avoid: Container[int] = ()) -> Sent:
    """Open a socket inside ``netns`` and send the one marked packet (non-blocking).

    ``payload``: a UDP datagram's content instead of the bare marker (it must carry the marker).
    ``size``: an ICMP echo of that many payload bytes (``ping -s``); the raw socket sets DF on a
    packet that fits the route's MTU, so a path that cannot carry it loses it (``ping -M do``).
    ``sport``: send TCP or UDP from this source port (a client that keeps its port), not a random one;
    ``avoid``: the ports a random one must not be (a flow conntrack still holds).
    """
    marker = marker_of(nonce)
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
        body += bytes(max(0, size - len(body)))
        if size:  # DF always, as ping -M do: a packet bigger than the route's MTU is refused, not fragmented
            s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        csum = checksum(hdr + body)
        sent = Sent("icmp", None, ident, marker, _sock=s)
        try:
            s.sendto(struct.pack("!BBHHH", 8, 0, csum, ident, 1) + body, (dst, 0))
        except OSError as exc:  # no route: the walk will show the kernel's answer
            sent.error = sent.reply_text = f"not sent: {exc.strerror}"
            # EPERM: a rule of this namespace's output hook took it; a reject (a node's cluster-ips-check) says so
            sent.rejected = exc.errno == errno.EPERM
            sent.too_big = exc.errno == errno.EMSGSIZE
        return sent
    if sport:
        try:
            s.bind(("0.0.0.0", sport))
        except OSError as exc:
            s.close()
            raise UsageError(f"cannot send from port {sport} in {netns}: {exc.strerror}") from None
    else:
        # Above the namespace's ephemeral range, as the prober's Service probes: a traced flow that a
        # Service DNATs shares its reply tuple with a later direct flow from the same port to the
        # endpoint, and conntrack would rewrite that flow's source port (probe/sockets.py).
        bind_service_port(s, avoid)
        sport = s.getsockname()[1]
    sent = Sent(proto, None, sport, marker, _sock=s)
    if proto == "tcp":
        err = s.connect_ex((dst, dport))
        if err not in (0, errno.EINPROGRESS):
            sent.error = sent.reply_text = f"not sent: {os.strerror(err)}"
    else:
        try:
            s.connect((dst, dport))  # a connected UDP socket also gets the ICMP errors
            s.send(payload if payload is not None else marker + b"\n")
        except OSError as exc:
            sent.error = sent.reply_text = f"not sent: {exc.strerror}"
    try:
        src = s.getsockname()[0]
        sent.src = src if src != "0.0.0.0" else None
    except OSError:
        pass
    return sent


def wait_reply(sent: Sent, timeout: float) -> None:
    """Wait (at most ``timeout`` s) for the reply on the packet's own socket."""
    s = sent._sock if not (sent.error or "").startswith("not sent") else None
    deadline = time.monotonic() + timeout
    while s is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if sent.proto == "tcp":
            if not fdwait.writable(s, left):
                return
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                sent.reply, sent.reply_text = True, "connection established (SYN-ACK)"
            else:
                sent.reply = sent.refused = err == errno.ECONNREFUSED
                sent.error = os.strerror(err)
                sent.reply_text = f"connection failed: {os.strerror(err)}"
            return
        if not fdwait.readable(s, left):
            return
        try:
            data = s.recv(65535)
        except OSError as exc:  # ICMP error on a connected UDP socket
            sent.error = exc.strerror
            sent.refused = exc.errno == errno.ECONNREFUSED
            sent.reply_text = f"error: {exc.strerror}"
            return
        if sent.proto == "udp":
            sent.reply, sent.reply_data = True, data
            sent.reply_text = data.decode(errors="replace").strip()[:200]
            return
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if len(icmp) >= 8 and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == sent.sport \
                and sent.marker in icmp[8:]:
            sent.reply, sent.reply_text = True, f"echo reply from {ip_text(data[12:16])} ttl {data[8]}"
            return
        if len(icmp) >= 8 and icmp[0] in (DEST_UNREACH, TIME_EXCEEDED):
            q = icmp[8:]
            qihl = (q[0] & 0x0F) * 4 if q else 0
            if len(q) >= qihl + 8 and q[9] == 1 and struct.unpack("!H", q[qihl + 4:qihl + 6])[0] == sent.sport:
                sent.error = f"{icmp_words(icmp[0], icmp[1])} from {ip_text(data[12:16])}"
                sent.rejected = (icmp[0], icmp[1]) == (DEST_UNREACH, 3)  # port unreachable: no echo has a port
                sent.reply_text = sent.error
                return
