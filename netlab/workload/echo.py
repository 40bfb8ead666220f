"""netlab's built-in echo server: the role ``agnhost netexec`` plays in Kubernetes' network tests.

Run inside a pod (``python -m netlab.workload.echo --pod fedora-2 --port 8080/TCP
--port 53/UDP``), it answers every TCP connection and every UDP datagram with
one JSON line::

    {"pod": "fedora-2", "client": "10.244.0.2:41234", "server": "10.244.1.3:8080"}

``client`` is the peer address *as this pod sees it* and ``server`` the local
address the request arrived at, so a prober can check the Kubernetes rules
"no NAT between pods and nodes" and "the IP a pod sees itself as is the IP
others reach it at" from the packets' own point of view.

TCP: the reply is sent as soon as the connection is accepted (no request is
needed, so ``nc 10.244.1.3 8080`` shows it), then the server half-closes and
drains whatever the client sends until the client closes (so a client that did
send something, say an HTTP request, still reads the reply instead of a reset).

UDP: the reply goes back from the address the datagram was sent to
(``IP_PKTINFO``), as a connected client socket and conntrack require.

Deliberately small: standard library only, one thread, ``selectors``. Each
request is logged as one line on stdout (the container's log file).

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
import selectors
import socket
import struct
import sys
import time

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
DRAIN_SECONDS = 5.0  # how long a half-closed TCP connection may linger
MAX_DRAIN = 64 * 1024  # bytes read from one client before it is simply closed


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


def _log(proto: str, client: tuple[str, int], server: tuple[str, int]) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} {proto} {client[0]}:{client[1]} -> {server[0]}:{server[1]}", flush=True)


class Server:
    def __init__(self, pod: str, ports: list[tuple[int, str]]):
        self.pod = pod
        self.sel = selectors.DefaultSelector()
        self.draining: dict[socket.socket, tuple[float, int]] = {}
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
                server = conn.getsockname()
                conn.setblocking(False)
                conn.send(reply(self.pod, client, server))
                conn.shutdown(socket.SHUT_WR)
                _log("tcp", client, server)
            except OSError:
                conn.close()
                continue
            self.draining[conn] = (time.monotonic() + DRAIN_SECONDS, 0)
            self.sel.register(conn, selectors.EVENT_READ, self._drain)

    def _drain(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        deadline, seen = self.draining.get(conn, (0.0, 0))
        seen += len(data)
        if not data or seen > MAX_DRAIN:
            self._close(conn)
        else:
            self.draining[conn] = (deadline, seen)

    def _close(self, conn: socket.socket) -> None:
        self.draining.pop(conn, None)
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
            if self.draining:
                timeout = max(0.0, min(d for d, _ in self.draining.values()) - time.monotonic())
            for key, _ in self.sel.select(timeout):
                key.data(key.fileobj)
            now = time.monotonic()
            for conn, (deadline, _) in list(self.draining.items()):
                if deadline <= now:
                    self._close(conn)


def _spawn_one(spec: dict, report: int) -> None:
    """In a forked child: become container ``spec`` and serve; never returns."""
    from netlab.workload.processes import enter_pod_here, set_comm

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
    import netlab.workload.processes  # noqa: F401 - imported once here, not in every child

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
                    help="Port to serve, e.g. 8080/TCP or 53/UDP (repeatable; default 8080/TCP).")
    ap.add_argument("--spawn", action="store_true",
                    help="Launcher mode: read container specs (JSON list) on stdin, fork one server each.")
    args = ap.parse_args(argv)
    if args.spawn:
        specs = json.loads(sys.stdin.buffer.read() or b"[]")
        report = os.dup(1)
        return 1 if spawn_all(specs, report) else 0
    if not args.pod:
        ap.error("--pod is required")
    ports = args.port or [(8080, "TCP")]
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
