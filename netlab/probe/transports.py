"""The four ways a probe travels, each a real kernel path: ICMP echo, UDP, UDP to a Service, TCP.

- ICMP (:class:`Icmp`): the echo request is built once per run (icmp.py:
  ICMP header and a payload carrying the run's nonce); each probe gets its
  own ICMP id, unique in the run, so conntrack never merges two probes, and
  its checksum. Replies are matched on the fixed ICMP header fields; anything
  else (destination unreachable, time exceeded) is read as an error whose
  quoted header names the probe and whose sender is who reported it.
- UDP (:class:`Udp`): one socket per source namespace; a reply is matched by
  the address and port it came from, an ICMP port unreachable quoting the
  probe (read on the raw socket) says "refused". A probe with a DNS question
  (the cluster DNS's 53/UDP) sends the query instead of the echo line, and
  only the answer to it (its id) is a reply.
- UDP to a Service (:class:`ServiceUdp`): a socket each, connected to the
  Service address, from a port of the Service range (sockets.py): a new
  source port, so a new random endpoint, per probe. The kernel hands a
  connected socket only replies from dst:port (a Service's replies come back
  un-DNATed, from the Service address) and reports an ICMP port unreachable
  as ECONNREFUSED on it.
- TCP (:class:`Tcp`): a real connection, which the echo server must accept;
  the probe sends one line and the server answers at once with the client
  address it saw. A connect to something else is proof of reachability too.

A transport sends and reads; the worker (worker.py) owns the loop, the
deadlines and the results, and a transport reports each outcome to it.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netlab.errors import loads_json
from netlab.probe import dnsq, icmp
from netlab.probe.sockets import NsSockets
from netlab.probe.tasks import NO_LINE_IN_TIME, Observation, Task

if TYPE_CHECKING:
    from netlab.probe.worker import Worker

UNREACH = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL}
REPLY_MAX = 4096  # bytes of an echo reply read before it is judged anyway


class Icmp:
    """Echo requests on each namespace's raw socket; replies and ICMP errors read back there."""

    def __init__(self, w: "Worker", template: bytes, nonce: bytes, id_base: int, udp: "Udp"):
        self.w, self.template, self.id_base, self.udp = w, template, id_base, udp
        self.marker = b"netlab" + nonce
        self.wait: dict[tuple[int, int], Task] = {}  # (namespace index, ICMP id) -> task

    def send(self, ns: NsSockets, t: Task) -> None:
        ident = (self.id_base + t.id) & 0xFFFF
        # A full-size echo ("mtu"): padded to t.size bytes; the raw socket sets DF on what fits the route
        # (IP_PMTUDISC_WANT), so a packet the path cannot carry is lost, not fragmented.
        pkt = bytearray(self.template) + bytes(max(0, t.size - len(self.template)))
        struct.pack_into("!HH", pkt, 2, 0, ident)
        struct.pack_into("!H", pkt, 2, icmp.checksum(bytes(pkt)))
        self.wait[(ns.idx, ident)] = t
        ns.raw.sendto(pkt, (t.dst, 0))

    def read(self, ns: NsSockets) -> None:
        marker, w = self.marker, self.w
        while True:
            try:
                data = ns.raw.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            now = w.now()
            if len(data) < 28:
                continue
            ihl = (data[0] & 0x0F) * 4
            if data[ihl] == icmp.ECHO_REPLY:  # fixed header, matched by id; the payload proves it is this run's
                ident = struct.unpack_from("!H", data, ihl + 4)[0]
                t = self.wait.get((ns.idx, ident))
                if t is None or data[ihl + 8:ihl + 8 + len(marker)] != marker or t.id in w.obs:
                    continue
                w.finish(t.id, Observation(outcome="reply", rtt=now - w.sent_at[t.id],
                                           reply_from=socket.inet_ntoa(data[12:16]), ttl=data[8]))
            else:
                self._error(ns, data)

    def _error(self, ns: NsSockets, data: bytes) -> None:
        """Destination unreachable / time exceeded: the quoted header names the probe."""
        err = icmp.parse_error(data)
        if err is None:
            return
        t = None
        outcome = "unreachable"
        if err.echo_id is not None:
            t = self.wait.get((ns.idx, err.echo_id))
        elif err.udp_ports is not None and err.udp_ports[0] == ns.udp_port:
            t = self.udp.wait.get((ns.idx, err.quoted_dst, err.udp_ports[1]))
            if err.type == icmp.DEST_UNREACH and err.code == icmp.PORT_UNREACH:
                outcome = "refused"
        if t is not None and t.id not in self.w.obs and t.dst == err.quoted_dst:
            self.w.finish(t.id, Observation(outcome=outcome, detail=err.describe(), reply_from=err.reporter,
                                            rtt=self.w.now() - self.w.sent_at[t.id]))


class Udp:
    """Datagrams from each namespace's one UDP socket; replies matched by where they came from."""

    def __init__(self, w: "Worker"):
        self.w = w
        self.wait: dict[tuple[int, str, int], Task] = {}  # (namespace index, dst, port) -> task

    def send(self, ns: NsSockets, t: Task) -> None:
        self.wait[(ns.idx, t.dst, t.port)] = t
        ns.udp.sendto(payload(t), (t.dst, t.port))

    def read(self, ns: NsSockets) -> None:
        w = self.w
        while True:
            try:
                data, (ip, port) = ns.udp.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            t = self.wait.get((ns.idx, ip, port))
            if t is None or t.id in w.obs:
                continue
            obs = Observation(outcome="reply", rtt=w.now() - w.sent_at[t.id], reply_from=ip, local=f":{ns.udp_port}")
            if reply_fields(obs, t, data):
                w.finish(t.id, obs)


@dataclass(slots=True)
class UdpFlow:
    """A Service probe's own UDP socket, connected."""

    task: Task
    sock: socket.socket
    local: str  # "ip:port" it sends from


class ServiceUdp:
    """A connected socket per Service probe."""

    def __init__(self, w: "Worker"):
        self.w = w
        self.flows: dict[int, UdpFlow] = {}  # fd -> flow
        self.by_task: dict[int, int] = {}  # task id -> fd

    def send(self, t: Task, s: socket.socket) -> None:
        try:
            s.connect((t.dst, t.port))
            local = "%s:%d" % s.getsockname()
            s.send(payload(t))
        except OSError:
            s.close()
            raise
        fd = s.fileno()
        self.flows[fd] = UdpFlow(t, s, local)
        self.by_task[t.id] = fd
        self.w.watch(fd, select.EPOLLIN, lambda ev: self.read(fd))

    def read(self, fd: int) -> None:
        flow = self.flows.get(fd)
        if flow is None:
            return
        t, w = flow.task, self.w
        try:
            data = flow.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:
            self._close(fd)
            w.finish(t.id, Observation(outcome="refused", detail="port unreachable (connection refused)",
                                       rtt=w.now() - w.sent_at[t.id], local=flow.local))
            return
        except OSError as exc:
            self._close(fd)
            w.finish(t.id, Observation(outcome="unreachable" if exc.errno in UNREACH else "error",
                                       detail=errname(exc), rtt=w.now() - w.sent_at[t.id], local=flow.local))
            return
        obs = Observation(outcome="reply", rtt=w.now() - w.sent_at[t.id], reply_from=t.dst, local=flow.local)
        if not reply_fields(obs, t, data):
            return  # not the answer to its question: wait on
        self._close(fd)
        w.finish(t.id, obs)

    def expire(self, tid: int) -> bool:
        """No answer in time: close its socket and say so (False: not one of ours)."""
        fd = self.by_task.get(tid)
        if fd is None:
            return False
        local = self.flows[fd].local
        self._close(fd)
        self.w.finish(tid, Observation(outcome="timeout", local=local))
        return True

    def _close(self, fd: int) -> None:
        flow = self.flows.pop(fd, None)
        if flow is None:
            return
        self.by_task.pop(flow.task.id, None)
        self.w.unwatch(fd)
        flow.sock.close()


@dataclass(slots=True)
class TcpFlow:
    """One TCP probe: connecting, then (``rtt`` set) waiting for the echo server's line."""

    task: Task
    sock: socket.socket
    local: str | None = None  # "ip:port" the kernel gave the connection
    rtt: float | None = None  # seconds to the completed handshake; None while connecting
    reply: bytearray = field(default_factory=bytearray)


class Tcp:
    """Real connections, closed with RST (SO_LINGER 0) as soon as they are judged."""

    def __init__(self, w: "Worker"):
        self.w = w
        self.flows: dict[int, TcpFlow] = {}  # fd -> flow
        self.by_task: dict[int, int] = {}  # task id -> fd

    def send(self, t: Task, s: socket.socket) -> None:
        fd = s.fileno()
        flow = self.flows[fd] = TcpFlow(t, s)
        self.by_task[t.id] = fd
        err = s.connect_ex((t.dst, t.port))
        if err not in (0, errno.EINPROGRESS):
            self._close(fd)
            raise OSError(err, os.strerror(err))
        try:
            flow.local = "%s:%d" % s.getsockname()
        except OSError:
            pass
        self.w.watch(fd, select.EPOLLOUT | select.EPOLLIN, lambda ev: self.event(fd, ev))

    def event(self, fd: int, ev: int) -> None:
        flow = self.flows.get(fd)
        if flow is None:
            return
        t, s, w = flow.task, flow.sock, self.w
        if flow.rtt is None:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(fd)
                refused = err == errno.ECONNREFUSED
                w.finish(t.id, Observation(outcome="refused" if refused else "unreachable",
                                           detail="connection refused" if refused else os.strerror(err).lower(),
                                           rtt=w.now() - w.sent_at[t.id], local=flow.local))
                return
            if not ev & (select.EPOLLOUT | select.EPOLLIN):
                return
            flow.rtt, flow.local = w.now() - w.sent_at[t.id], "%s:%d" % s.getsockname()
            if not t.wait_reply:  # no echo server there: the connect is the whole answer
                self._close(fd)
                w.finish(t.id, Observation(outcome="reply", rtt=flow.rtt, local=flow.local, reply_from=t.dst,
                                           detail="connected (not netlab's echo server: no client address to check)"))
                return
            # The echo server answers a client's first line at once (one that stays silent
            # waits for echo.GREETING_WAIT): say something that is not an HTTP request. A DNS
            # server gets its question, with TCP's two-byte length before it (RFC 1035 4.2.2).
            try:  # a connection the server reset fails with an error, never a SIGPIPE (kernel/sigpipe.py)
                s.send(payload(t, stream=True), socket.MSG_NOSIGNAL)
            except OSError:
                pass  # the reply (or its absence) still says what happened
            w.modify(fd, select.EPOLLIN)
        try:
            chunk = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        flow.reply += chunk
        if t.question:  # a DNS answer: whole once its length's bytes are in
            message = dnsq.from_tcp(bytes(flow.reply))
            if message is None and chunk and len(flow.reply) <= REPLY_MAX:
                return
            o = Observation(outcome="reply", rtt=flow.rtt, local=flow.local, reply_from=t.dst,
                            dns=dnsq.answer(message, t.id) if message is not None else None)
            if o.dns is None:
                o.detail = "connected; the server sent no DNS answer"
            self._close(fd)
            w.finish(t.id, o)
        elif b"\n" in flow.reply or not chunk or len(flow.reply) > REPLY_MAX:
            o = Observation(outcome="reply", rtt=flow.rtt, local=flow.local, reply_from=t.dst)
            echo_fields(o, bytes(flow.reply))
            if o.answered_by is None:
                o.detail = "connected; the server sent no echo reply"
            self._close(fd)
            w.finish(t.id, o)

    def expire(self, tid: int) -> bool:
        """No answer in time (False: not one of ours). Connected without an echo line is still a reply."""
        fd = self.by_task.get(tid)
        if fd is None:
            return False
        flow = self.flows[fd]
        self._close(fd)
        if flow.rtt is not None:  # connected, but no echo line: some other server, or late; reachable all the same
            self.w.finish(tid, Observation(outcome="reply", rtt=flow.rtt, local=flow.local, detail=(
                "connected; the server sent no DNS answer" if flow.task.question else
                "connected; the server sent no echo reply" if flow.reply else NO_LINE_IN_TIME)))
        else:
            self.w.finish(tid, Observation(outcome="timeout", local=flow.local))
        return True

    def _close(self, fd: int) -> None:
        flow = self.flows.pop(fd, None)
        if flow is None:
            return
        self.by_task.pop(flow.task.id, None)
        self.w.unwatch(fd)
        flow.sock.close()  # SO_LINGER 0: RST, the connection is gone at once


def errname(exc: OSError) -> str:
    """"network is unreachable", as a sentence fragment."""
    text = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return text[:1].lower() + text[1:]


def payload(t: Task, stream: bool = False) -> bytes:
    """What a probe carries: its DNS question (on a TCP ``stream``, its length first), else one line for the
    echo server."""
    if not t.question:
        return b"netlab probe %d\n" % t.id
    query = dnsq.query(t.id, t.question)
    return dnsq.over_tcp(query) if stream else query


def reply_fields(obs: Observation, t: Task, data: bytes) -> bool:
    """Fill ``obs`` from a UDP reply to ``t``: the DNS answer to its question, else the echo line's fields.
    False: a datagram that is no answer to the question (another id, not DNS): not this probe's reply."""
    if not t.question:
        echo_fields(obs, data)
        return True
    obs.dns = dnsq.answer(data, t.id)
    return obs.dns is not None


def echo_fields(obs: Observation, data: bytes) -> None:
    """Fill pod/client/server from an echo server's JSON line (leave them empty for anything else)."""
    line = data.split(b"\n", 1)[0]
    try:
        msg = loads_json(line)
    except ValueError:
        return
    if isinstance(msg, dict):
        obs.answered_by = msg.get("pod") if isinstance(msg.get("pod"), str) else None
        obs.seen_client = msg.get("client") if isinstance(msg.get("client"), str) else None
        obs.server = msg.get("server") if isinstance(msg.get("server"), str) else None
