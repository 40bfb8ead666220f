"""netlab's built-in echo server: the role ``agnhost netexec`` plays in Kubernetes' network tests.

Run inside a pod (``python -m netlab.workload.echo --pod fedora-2 --port 8080/TCP
--port 53/UDP``), it answers every TCP connection and every UDP datagram with
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

Deliberately small: the server is standard library only, one thread,
``selectors`` (the launcher below enters the pods with netlab.kernel.processes).
Each request is logged as one line on stdout (the container's log file).

Starting one Python interpreter per pod costs about 25 ms of CPU each (500 pods:
over 10 s on two cores), so ``up`` starts all the lab's echo containers through
one launcher, ``--spawn`` (the zygote idea of Android and of pre-forking
servers): it reads the containers' specs as JSON on stdin and forks one child
per container; each child starts its own session, joins the pod's network and
UTS namespaces, puts stdout/stderr on its log file and serves. The launcher
reports ``P <id> <pid>`` after each fork, and each child ``R <id> <pid>`` once
it listens (or ``E <id> <why>``), on stdout; the launcher then exits, the
children live on, re-parented to init. A child may report before its
launcher does (each runs on its own core): so every child names its own pid,
and the reader (workload.lifecycle) reads the pipe until every writer has
closed it, never stopping at the last "ready" (closing the pipe early once
killed the launcher with a broken pipe before it reported the last pid, and
left that server running unrecorded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import struct
import sys
import time

from netlab.kernel.processes import enter_pod_here, set_comm

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
DRAIN_SECONDS = 5.0  # how long a half-closed TCP connection may linger
MAX_DRAIN = 64 * 1024  # bytes read from one client before it is simply closed
# How long a TCP client may stay silent before it gets the reply unasked: long
# enough for an HTTP client on a loaded machine to send its request after the
# handshake, short enough for a person typing `nc pod 8080`.
GREETING_WAIT = 0.5
MAX_REQUEST = 8 * 1024  # request head read before answering anyway
HTTP_REQUEST_LINE = re.compile(rb"^[A-Z]{1,16} [\x21-\x7e]+ HTTP/1\.[0-9]\r?$")


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


class _Conn:
    """One accepted TCP connection: waiting for the client's first words, then draining."""

    __slots__ = ("client", "server", "deadline", "head", "answered", "seen")

    def __init__(self, client: tuple[str, int], server: tuple[str, int]):
        self.client, self.server = client, server
        self.deadline = time.monotonic() + GREETING_WAIT
        self.head = b""
        self.answered = False
        self.seen = 0


def _log(proto: str, client: tuple[str, int], server: tuple[str, int]) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} {proto} {client[0]}:{client[1]} -> {server[0]}:{server[1]}", flush=True)


class Server:
    def __init__(self, pod: str, ports: list[tuple[int, str]]):
        self.pod = pod
        self.sel = selectors.DefaultSelector()
        self.conns: dict[socket.socket, _Conn] = {}
        for port, proto in ports:
            if proto == "TCP":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                s.listen(1024)
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, self._accept)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                s.bind(("0.0.0.0", port))
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, self._datagram)

    def _accept(self, lsock: socket.socket) -> None:
        for _ in range(64):  # accept a burst, then let others run
            try:
                conn, client = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                conn.setblocking(False)
                self.conns[conn] = _Conn(client, conn.getsockname())
                self.sel.register(conn, selectors.EVENT_READ, self._read)
            except OSError:
                self.conns.pop(conn, None)
                conn.close()

    def _read(self, conn: socket.socket) -> None:
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
        body = reply(self.pod, c.client, c.server)
        if kind == "http":
            out = http_response(body, head_request=c.head.startswith(b"HEAD "))
        else:
            out = body
        c.answered = True
        c.deadline = time.monotonic() + DRAIN_SECONDS
        try:
            conn.send(out)  # a few hundred bytes: fits any fresh socket's send buffer
            conn.shutdown(socket.SHUT_WR)
            _log("http" if kind == "http" else "tcp", c.client, c.server)
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

    def _close(self, conn: socket.socket) -> None:
        self.conns.pop(conn, None)
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _datagram(self, sock: socket.socket) -> None:
        for _ in range(256):
            try:
                _data, anc, _flags, client = sock.recvmsg(2048, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
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
                sock.sendmsg([reply(self.pod, client, local)], cmsgs, 0, client)
                _log("udp", client, local)
            except OSError as exc:
                print(f"udp reply to {client[0]}:{client[1]} failed: {exc}", flush=True)

    def serve(self) -> None:
        while True:
            timeout = None
            if self.conns:
                timeout = max(0.0, min(c.deadline for c in self.conns.values()) - time.monotonic())
            for key, _ in self.sel.select(timeout):
                key.data(key.fileobj)
            self._expire(time.monotonic())


def _spawn_one(spec: dict, report: int) -> None:
    """In a forked child: become container ``spec`` and serve; never returns."""
    cid = spec["id"]
    try:
        os.setsid()
        net_fd = os.open(spec["netns_path"], os.O_RDONLY)
        uts_fd = os.open(spec["uts"], os.O_RDONLY) if spec.get("uts") else None
        log_fd = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        enter_pod_here(net_fd, uts_fd, spec["netns"], mounts=False)
        os.chdir("/")
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        keep = {0, 1, 2, report}
        for fd in (net_fd, uts_fd, log_fd, null_fd):
            if fd is not None and fd not in keep:
                os.close(fd)
        os.closerange(3, report)
        os.closerange(report + 1, 1 << 16)
        os.environ.clear()
        os.environ.update(spec.get("env", {}))
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        set_comm(f"echo {spec['pod']}")
        ports = [(int(p), str(proto)) for p, proto in spec["ports"]]
        server = Server(spec["pod"], ports)
        print(f"echo server for pod {spec['pod']} listening on "
              f"{', '.join(f'{p}/{proto}' for p, proto in ports)}", flush=True)
        os.write(report, f"R {cid} {os.getpid()}\n".encode())
        os.close(report)
        report = -1
        server.serve()
    except BaseException as exc:  # noqa: BLE001 - report, log, exit
        msg = str(exc).replace("\n", " ")[:300]
        try:
            print(f"echo: {msg}", file=sys.stderr, flush=True)
            if report >= 0:
                os.write(report, f"E {cid} {msg}\n".encode())
        finally:
            os._exit(1)
    os._exit(0)


def spawn_all(specs: list[dict], report: int) -> int:
    """Fork one echo container per spec (see the module docstring); returns how many forks failed."""
    failed = 0
    for spec in specs:
        try:
            pid = os.fork()
        except OSError as exc:
            os.write(report, f"E {spec['id']} fork: {exc}\n".encode())
            failed += 1
            continue
        if pid == 0:
            _spawn_one(spec, report)
        os.write(report, f"P {spec['id']} {pid}\n".encode())
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netlab.workload.echo",
                                 description="Answer each TCP connection and UDP datagram with "
                                             "the pod's name and the client address as seen here.")
    ap.add_argument("--pod", help="Pod name to put in replies.")
    ap.add_argument("--port", action="append", type=parse_port, default=[], metavar="PORT/PROTO",
                    help="Port to serve, e.g. 8080/TCP or 53/UDP (repeatable; default 8080/TCP and 8080/UDP).")
    ap.add_argument("--spawn", action="store_true",
                    help="Launcher mode: read container specs (JSON list) on stdin, fork one server each.")
    args = ap.parse_args(argv)
    if args.spawn:
        specs = json.loads(sys.stdin.buffer.read() or b"[]")
        report = os.dup(1)
        return 1 if spawn_all(specs, report) else 0
    if not args.pod:
        ap.error("--pod is required")
    ports = args.port or [(8080, "TCP"), (8080, "UDP")]
    try:
        server = Server(args.pod, ports)
    except OSError as exc:
        print(f"echo: cannot listen: {exc}", file=sys.stderr, flush=True)
        return 1
    listening = ", ".join(f"{p}/{proto}" for p, proto in ports)
    print(f"echo server for pod {args.pod} listening on {listening}", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
