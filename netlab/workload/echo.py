"""netlab's built-in echo server: the role ``agnhost netexec`` plays in Kubernetes' network tests.

It answers every TCP connection and every UDP datagram on a pod's ports with
one JSON line::

    {"pod": "fedora-2", "client": "10.244.0.2:41234", "server": "10.244.1.3:8080"}

``client`` is the peer address *as this pod sees it* and ``server`` the local
address the request arrived at, so a prober can check the Kubernetes rules
"no NAT between pods and nodes" and "the IP a pod sees itself as is the IP
others reach it at" from the packets' own point of view.

TCP: the client speaks first, or not at all. A request that looks like HTTP
(``GET /path HTTP/1.1``: a method, a target and an HTTP/1.x version on the
first line) gets a valid HTTP/1.1 response once its headers are in (``200 OK``,
``Content-Type: application/json``, ``Content-Length``, ``Connection: close``)
whose body is the same JSON line, so ``curl http://10.244.1.3:8080/`` works;
any other first line (the prober sends ``netlab probe <n>``) gets the JSON line
at once; a client that sends nothing for ``GREETING_WAIT`` seconds gets it
then (so ``nc 10.244.1.3 8080`` shows it). After the reply the server
half-closes and drains whatever else the client sends until it closes (so
the client reads the reply instead of a reset).

UDP: the reply goes back from the address the datagram was sent to
(``IP_PKTINFO``), as a connected client socket and conntrack require.

One loop serves many pods. A socket keeps the network namespace it was
opened in, so the lab's echo server (echoserver.py) opens each container's
listening sockets inside that container's pod and hands them all to one
:class:`EchoLoop`: each listening socket carries the pod whose name goes in
its replies and the log its requests are written to (one line each, buffered
and written once per round of the loop). Run alone (``python -m
netlab.workload.echo --pod fedora-2 --port 8080/TCP --port 53/UDP``) it serves
one pod from the namespace it runs in, logging on stdout.

Standard library only, one thread, ``selectors``. The logs (:class:`Log`, a log
started over past ``echo_log.LOG_MAX``) are echo_log.py's; ``Log`` and ``start_over_if_full`` stay
importable from here. The limit is not re-exported: a copy here would be a second name that setting changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import socket
import struct
import sys
import time
from typing import Callable

from netlab.workload.echo_log import Log as Log
from netlab.workload.echo_log import start_over_if_full as start_over_if_full
from netlab.workload import proxyhealth
from netlab.workload.echo_log import stamp

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
DRAIN_SECONDS = 5.0  # how long a half-closed TCP connection may linger
MAX_DRAIN = 64 * 1024  # bytes read from one client before it is simply closed
# How long a TCP client may stay silent before it gets the reply unasked: long
# enough for an HTTP client on a loaded machine to send its request after the
# handshake, short enough for a person typing `nc pod 8080`.
GREETING_WAIT = 0.5
MAX_REQUEST = 8 * 1024  # request head read before answering anyway
HTTP_REQUEST_LINE = re.compile(rb"^[A-Z]{1,16} [\x21-\x7e]+ HTTP/1\.[0-9]\r?$")
# A UDP port's receive buffer, asked for with SO_RCVBUFFORCE (root: past net.core.rmem_max, no sysctl changed; the
# kernel doubles it: 4 MiB). One server drains every pod's sockets, and a probe's Service distributions send a burst
# of datagrams to the same few endpoints: the default 208 KiB holds 256 of them (832 bytes each as the kernel counts
# them), and a pod dropped tens (RcvbufErrors). 4 MiB holds ~5,000; memory is charged only for datagrams waiting.
UDP_RCVBUF = 2 << 20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def parse_port(text: str) -> tuple[int, str]:
    """``8080/TCP`` or ``53/udp`` or ``8080`` (TCP) -> (8080, "TCP")."""
    num, _, proto = text.partition("/")
    proto = (proto or "TCP").upper()
    port = int(num)
    if not 1 <= port <= 65535 or proto not in ("TCP", "UDP"):
        raise argparse.ArgumentTypeError(f"bad port {text!r}: want PORT[/TCP|/UDP], 1-65535")
    return port, proto


def reply(pod: str, client: tuple[str, int], server: tuple[str, int]) -> bytes:
    return (json.dumps({"pod": pod, "client": f"{client[0]}:{client[1]}",
                        "server": f"{server[0]}:{server[1]}"}) + "\n").encode()


def classify(head: bytes, final: bool = False) -> str | None:
    """What a TCP client's first bytes are: "http" (an HTTP/1.x request line), "line" (anything
    else), or None while undecided (no full first line yet, unless ``final``: no more will come)."""
    line, newline, _ = head.partition(b"\n")
    if not newline and not final and len(head) < MAX_REQUEST:
        return None
    return "http" if newline and HTTP_REQUEST_LINE.match(line) else "line"


def head_complete(head: bytes) -> bool:
    """The request's header block is in (the blank line after the headers)."""
    return b"\r\n\r\n" in head or b"\n\n" in head


def http_response(body: bytes, head_request: bool = False) -> bytes:
    """An HTTP/1.1 200 response carrying ``body`` (the JSON line); HEAD gets the headers only."""
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}",
             "Connection: close", "Cache-Control: no-store", "", ""]
    return "\r\n".join(lines).encode() + (b"" if head_request else body)


STATUS_TEXT = {200: "OK", 503: "Service Unavailable"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(now: float | None = None) -> str:
    """``Mon, 02 Jan 2006 15:04:05 GMT``: HTTP's date (Go's http.TimeFormat), in English whatever the locale."""
    t = time.gmtime(now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def fixed_response(status: int, body: bytes, head_request: bool = False, now: float | None = None) -> bytes:
    """An answer as Go's net/http writes kube-proxy's health check (pkg/proxy/healthcheck/service_health.go):
    the handler's three headers in Go's order (sorted), the weight being the body's localEndpoints, then the
    server's own: Connection: close (this server answers one request per connection, as Go's does to a client
    that asks it to close), Date (http.TimeFormat), Content-Length."""
    try:
        weight = json.loads(body).get("localEndpoints", 0)
    except (ValueError, AttributeError):
        weight = 0
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}", "Content-Type: application/json",
             "X-Content-Type-Options: nosniff", f"X-Load-Balancing-Endpoint-Weight: {weight}", "Connection: close",
             f"Date: {http_date(now)}", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + (b"" if head_request else body)


# What Go's HTTP server answers a first line that is no HTTP request.
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" \
              b"400 Bad Request"


def listening_line(pod: str, ports: list[tuple[int, str]]) -> str:
    """The first line of a container's log."""
    return f"echo server for pod {pod} listening on {', '.join(f'{p}/{proto}' for p, proto in ports)}"


def listen(ports: list[tuple[int, str]], address: str = "0.0.0.0") -> list[socket.socket]:
    """Listening sockets for (port, "TCP"|"UDP") on ``address``, in the calling thread's network namespace.

    All or nothing: on an error (``Address already in use``) the ones made are closed.
    """
    out: list[socket.socket] = []
    try:
        for port, proto in ports:
            if proto == "TCP":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                out.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
                s.listen(1024)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                out.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                roomy(s)
                s.bind((address, port))
            s.setblocking(False)
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


def listens(s: socket.socket) -> bool:
    """Whether a socket made by :func:`listen` still listens: the kernel aborts one it destroys (sock_destroy,
    ``ss -K``; Linux 6.18 measured): a TCP one leaves the listening state (SO_ACCEPTCONN 0; epoll reports
    EPOLLIN|EPOLLERR|EPOLLHUP for good, accept fails with EINVAL, its port stays bound); a UDP one bound to its
    port keeps it and goes on receiving (epoll reports EPOLLERR, the next receive fails once with ECONNABORTED),
    one bound to port 0 would let its port go (port 0 then)."""
    try:
        if s.type == socket.SOCK_STREAM:
            return s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        return s.getsockname()[1] != 0
    except OSError:  # closed
        return False


def roomy(s: socket.socket, size: int = UDP_RCVBUF) -> None:
    """Give a UDP socket a receive buffer of ``size`` (doubled by the kernel); without CAP_NET_ADMIN, as much of it
    as the namespace's net.core.rmem_max allows."""
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


# --- the loop -------------------------------------------------------------------------


class Served:
    """What a listening socket serves: a container of a pod (``key``: "pod/container"), or, with ``answer``,
    a fixed HTTP answer (status, body) in place of the echo line, unlogged: kube-proxy's health check of a
    Service on a node (plan/health.py), which the answer may be changed in place for; with ``proxy``,
    kube-proxy's own health server on a node (its answer by path and time: proxyhealth.py)."""

    __slots__ = ("key", "pod", "log", "answer", "proxy")

    def __init__(self, key: str, pod: str, log: Log | None, answer: tuple[int, bytes] | None = None,
                 proxy: bool = False):
        self.key, self.pod, self.log, self.answer, self.proxy = key, pod, log, answer, proxy


class _Conn:
    """One accepted TCP connection: waiting for the client's first words, then draining."""

    __slots__ = ("served", "client", "server", "deadline", "head", "answered", "seen")

    def __init__(self, served: Served, client: tuple[str, int], server: tuple[str, int]):
        self.served, self.client, self.server = served, client, server
        self.deadline = time.monotonic() + GREETING_WAIT
        self.head = b""
        self.answered = False
        self.seen = 0


class EchoLoop:
    """One ``selectors`` loop for every pod's listening sockets (and, for echoserver.py, its control socket)."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.conns: dict[socket.socket, _Conn] = {}
        self.listening: dict[str, list[socket.socket]] = {}  # key -> its listening sockets
        self.dirty: set[Log] = set()
        # Keys one of whose listening sockets the kernel took away (``ss -K``, sock_destroy): no longer listened
        # on, for the owner (echoserver.py) to stop serving and say so; the rest of its sockets stay as they are.
        self.lost: list[str] = []

    # --- what is served ---

    def serve(self, served: Served, socks: list[socket.socket]) -> None:
        """Answer on these listening sockets (made by :func:`listen`, in the pod's namespace) as ``served``."""
        for s in socks:
            handler = self._accept if s.type == socket.SOCK_STREAM else self._datagram
            self.sel.register(s, selectors.EVENT_READ, (handler, served))
        self.listening[served.key] = list(socks)

    def drop(self, key: str) -> None:
        """Stop serving ``key``: close its listening sockets and its open connections."""
        for s in self.listening.pop(key, []):
            self._forget(s)
        for conn in [conn for conn, c in self.conns.items() if c.served.key == key]:
            self._close(conn)

    def watch(self, sock: socket.socket, callback: Callable[[socket.socket], None]) -> None:
        """Call ``callback(sock)`` when ``sock`` is readable (echoserver.py's control socket)."""
        self.sel.register(sock, selectors.EVENT_READ, (callback, None))

    def unwatch(self, sock: socket.socket) -> None:
        self._forget(sock)

    # --- the work ---

    def run_once(self, longest: float | None = None) -> None:
        """Wait for events (at most ``longest`` seconds; None: until one comes), handle them, write the logs."""
        timeout = longest
        if self.conns:
            soonest = max(0.0, min(c.deadline for c in self.conns.values()) - time.monotonic())
            timeout = soonest if timeout is None else min(timeout, soonest)
        for key, _ in self.sel.select(timeout):
            handler, served = key.data
            if served is None:
                handler(key.fileobj)
            else:
                handler(key.fileobj, served)
        self._expire(time.monotonic())
        for log in self.dirty:
            log.flush()
        self.dirty.clear()

    def _log(self, served: Served, proto: str, client: tuple[str, int], server: tuple[str, int]) -> None:
        if served.log is None:
            return
        served.log.write(f"{stamp()} {proto} {client[0]}:{client[1]} -> {server[0]}:{server[1]}")
        self.dirty.add(served.log)

    def _accept(self, lsock: socket.socket, served: Served) -> None:
        for _ in range(64):  # accept a burst, then let others run
            try:
                conn, client = lsock.accept()
            except (BlockingIOError, InterruptedError):  # nothing more now
                return
            except OSError:  # EINVAL: destroyed (ss -K)
                self._check(lsock, served)
                return
            try:
                conn.setblocking(False)
                self.conns[conn] = _Conn(served, client, conn.getsockname())
                self.sel.register(conn, selectors.EVENT_READ, (self._read, served))
            except OSError:
                self.conns.pop(conn, None)
                conn.close()

    def _read(self, conn: socket.socket, served: Served) -> None:
        c = self.conns.get(conn)
        if c is None:
            return
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if c.answered:
            c.seen += len(data)
            if not data or c.seen > MAX_DRAIN:
                self._close(conn)
            return
        c.head += data
        kind = classify(c.head, final=not data)
        if kind == "http" and data and not head_complete(c.head) and len(c.head) < MAX_REQUEST:
            return  # the request line is in; wait for the rest of the head
        if kind is not None:
            self._answer(conn, c, kind)
        if not data:
            self._close(conn)

    def _answer(self, conn: socket.socket, c: _Conn, kind: str) -> None:
        """Send the reply (as HTTP for an HTTP request), half-close, then drain until the client closes."""
        head = c.head.startswith(b"HEAD ")
        if c.served.proxy:
            out = proxyhealth.answer(c.head, http_date()) if kind == "http" else BAD_REQUEST
        elif c.served.answer is not None:
            out = fixed_response(*c.served.answer, head_request=head) if kind == "http" else BAD_REQUEST
        else:
            body = reply(c.served.pod, c.client, c.server)
            out = http_response(body, head_request=head) if kind == "http" else body
        c.answered = True
        c.deadline = time.monotonic() + DRAIN_SECONDS
        try:
            conn.send(out)  # a few hundred bytes: fits any fresh socket's send buffer
            conn.shutdown(socket.SHUT_WR)
            self._log(c.served, "http" if kind == "http" else "tcp", c.client, c.server)
        except OSError:
            self._close(conn)

    def _expire(self, now: float) -> None:
        for conn, c in list(self.conns.items()):
            if c.deadline > now:
                continue
            if c.answered:
                self._close(conn)  # drained long enough
            else:
                kind = "http" if classify(c.head, final=True) == "http" else "line"
                self._answer(conn, c, kind)  # silent client (nc), or a request head that never ended

    def _check(self, sock: socket.socket, served: Served) -> None:
        """After an error on a listening socket: if the kernel destroyed it (sock_destroy, ``ss -K``: it no
        longer listens, :func:`listens`), stop watching it (epoll would report it ready for good: EPOLLHUP) and add
        its key to :attr:`lost`."""
        if listens(sock):
            return
        socks = self.listening.get(served.key, [])
        if sock in socks:
            socks.remove(sock)
        self._forget(sock)
        if served.key not in self.lost:
            self.lost.append(served.key)

    def _forget(self, sock: socket.socket) -> None:
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _close(self, conn: socket.socket) -> None:
        self.conns.pop(conn, None)
        self._forget(conn)

    def _datagram(self, sock: socket.socket, served: Served) -> None:
        for _ in range(256):
            try:
                _data, anc, _flags, client = sock.recvmsg(2048, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):  # nothing more now
                return
            except OSError:  # ECONNABORTED: destroyed (ss -K), once; bound to its port, it goes on receiving
                self._check(sock, served)
                return
            local = sock.getsockname()
            cmsgs = []
            for level, kind, data in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
                    # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                    _ifindex, spec_dst, addr = struct.unpack("i4s4s", data[:12])
                    local = (socket.inet_ntoa(addr), local[1])
                    # Reply from the address the datagram was sent to.
                    cmsgs = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("i4s4s", 0, spec_dst, b"\0" * 4))]
            try:
                sock.sendmsg([reply(served.pod, client, local)], cmsgs, 0, client)
                self._log(served, "udp", client, local)
            except OSError as exc:
                if served.log is not None:
                    served.log.write(f"udp reply to {client[0]}:{client[1]} failed: {exc}")
                    self.dirty.add(served.log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netlab.workload.echo",
                                 description="Answer each TCP connection and UDP datagram with "
                                             "the pod's name and the client address as seen here.")
    ap.add_argument("--pod", required=True, help="Pod name to put in replies.")
    ap.add_argument("--port", action="append", type=parse_port, default=[], metavar="PORT/PROTO",
                    help="Port to serve, e.g. 8080/TCP or 53/UDP (repeatable; default 8080/TCP and 8080/UDP).")
    args = ap.parse_args(argv)
    ports = args.port or [(8080, "TCP"), (8080, "UDP")]
    try:
        socks = listen(ports)
    except OSError as exc:
        print(f"echo: cannot listen: {exc}", file=sys.stderr, flush=True)
        return 1
    loop = EchoLoop()
    log = Log(1, own=False)
    loop.serve(Served(args.pod, args.pod, log), socks)
    log.write(listening_line(args.pod, ports))
    log.flush()
    try:
        while True:
            loop.run_once()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
