"""The lab's echo server's control socket (echoserver.py's): ``<state dir>/<lab>/echo.sock``, root peers only.

One JSON request per connection, ended by the peer's end of writing (launch.ask writes it whole at once), answered
with one line per container or check, then ``OK``. Every peer's request is read in the server's loop as it comes,
without blocking: a peer that has not sent its whole request within :data:`REQUEST_WAIT` seconds (one that
connects, sends ``{`` and waits) is dropped with its connection, and never holds the requests of the others
(``up``, ``status``, ``down`` of the lab), which are answered meanwhile, nor the pods' echo traffic.

The protocol has a number, :data:`PROTOCOL`, which the server says when asked (``version``: ``V <protocol>``).
A server of an older netlab, left running across an upgrade of netlab, answers the questions it knows and
``? unknown request ...`` to the others: one that answers the ``version`` question so speaks
:data:`UNVERSIONED`, the protocol before it had a number; ``status`` says such a server is an older netlab's,
and ``up`` replaces it (echo_upgrade.py).
"""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from netlab.kernel import pidfd, unixpath

if TYPE_CHECKING:
    from netlab.workload.echo import EchoLoop
    from netlab.workload.echoserver import EchoServer

REQUEST_WAIT = 1.0  # seconds a control peer has to send its whole request (netlab's own sends it in one write)
MAX_REQUEST = 16 << 20  # bytes of one control request (a spec is ~300 bytes)
UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (SO_PEERCRED)
# The control protocol's number: one more whenever a request is added, or a request or its answer changes meaning,
# so that a server of the netlab before is told from this one's (and replaced by up: echo_upgrade.py).
# 1: unnumbered (add, remove, hold, exits, health, health?, hello; a server of an older netlab knows some of them);
# 2: version, remember (exit statuses handed over from the server replaced).
PROTOCOL = 2
UNVERSIONED = 1  # what a server that answers ``version`` with ``? unknown request`` speaks
OPS = ("add", "remove", "hold", "exits", "health", "health?", "hello", "version", "remember")  # at PROTOCOL


def bind_control(path: str) -> tuple[socket.socket, int]:
    """Listen on ``path`` (root only); returns the socket and its inode. Refuses when another server answers there.

    Through its folder's descriptor (kernel/unixpath.py): a path of any length, longer than an AF_UNIX address."""
    with unixpath.Folder(path) as at:
        try:
            st = at.lstat()
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                probe.connect(at.address)
                raise OSError(f"another echo server answers on {path}")
            except (ConnectionRefusedError, FileNotFoundError):
                at.unlink()  # a dead server's socket
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o077)
        try:
            sock.bind(at.address)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
        sock.listen(16)
        sock.setblocking(False)
        return sock, at.lstat().st_ino


def still_there(path: str, ino: int) -> bool:
    try:
        return os.stat(path).st_ino == ino
    except OSError:
        return False


@dataclass
class _Pending:
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    fds: list[int] = field(default_factory=list)


class Control:
    """The control socket's peers, each read in ``loop`` as its bytes come, until its end of writing (then
    answered) or its deadline (then dropped)."""

    def __init__(self, server: EchoServer, loop: EchoLoop, lsock: socket.socket):
        self.server, self.loop = server, loop
        self.pending: dict[socket.socket, _Pending] = {}
        loop.watch(lsock, self.accept)

    def accept(self, lsock: socket.socket) -> None:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        try:
            _pid, uid, _gid = UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
            conn.setblocking(False)
        except OSError:
            conn.close()
            return
        if uid not in (0, os.geteuid()):
            conn.close()
            return
        self.pending[conn] = _Pending(time.monotonic() + REQUEST_WAIT)
        self.loop.watch(conn, self.read)

    def read(self, conn: socket.socket) -> bool:
        """What a peer sent; at its end of writing, its request answered. True: it sent more, and may send on."""
        p = self.pending[conn]
        try:
            chunk, more, _flags, _addr = socket.recv_fds(conn, 1 << 16, pidfd.SCM_MAX_FD)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.drop(conn, f"control request failed: {exc}")
            return False
        p.fds += more
        p.data += chunk
        if len(p.data) > MAX_REQUEST:
            self.drop(conn, f"control request failed: longer than {MAX_REQUEST} bytes")
        elif not chunk:
            del self.pending[conn]
            try:
                self.answer(conn, bytes(p.data), p.fds)
            finally:
                self.loop.unwatch(conn)  # closed
        return conn in self.pending

    def wait(self) -> float:
        """Seconds until the next peer's deadline (infinity: no peer is pending)."""
        if not self.pending:
            return math.inf
        return max(0.0, min(p.deadline for p in self.pending.values()) - time.monotonic())

    def expire(self, now: float) -> None:
        for conn in [conn for conn, p in self.pending.items() if p.deadline <= now]:
            while self.read(conn):  # what came while the server was busy (an add) is the peer's, in time
                pass
            if conn not in self.pending:
                continue
            self.drop(conn, f"control peer dropped: no whole request within {REQUEST_WAIT:g} s")

    def drop(self, conn: socket.socket, why: str) -> None:
        # Said before the socket closes: a peer that sees its end may read the log at once.
        print(f"echo: {why}", file=sys.stderr, flush=True)
        for fd in self.pending.pop(conn).fds:
            os.close(fd)
        self.loop.unwatch(conn)

    def answer(self, conn: socket.socket, data: bytes, fds: list[int]) -> None:
        """One request of :data:`OPS`: add, remove, hold, exits, health (the set of kube-proxy's health checks to
        serve), health? (those served), hello, version, or remember; answered one line per container or check, then
        ``OK`` (``? unknown request`` for any other, as every server since the first)."""
        if not data and not fds:
            return  # a peer that only looked who listens here (launch.server_pid): nothing to answer
        server = self.server
        try:
            try:
                req = json.loads(data or b"{}")
            except ValueError:
                for fd in fds:
                    os.close(fd)
                raise
            op = req.get("op") if isinstance(req, dict) else None
            if op != "hold":
                for fd in fds:
                    os.close(fd)
            if op == "add":
                lines = list(server.add([s for s in _listed(req, "specs") if isinstance(s, dict)]))
            elif op == "remove":
                lines = [line for cid in map(str, _listed(req, "ids")) if (line := removed(server, cid))]
            elif op == "hold":
                lines = list(server.hold(_listed(req, "items"), fds))  # it keeps or closes each fd
            elif op == "exits":
                lines = list(server.exits(_listed(req, "ids")))
            elif op == "health":
                lines = list(server.sync_health([s for s in _listed(req, "specs") if isinstance(s, dict)]))
            elif op == "health?":
                lines = list(server.health_served())
            elif op == "hello":
                lines = [f"H {os.getpid()} {len(server.threads)}"]
            elif op == "version":
                lines = [f"V {PROTOCOL}"]
            elif op == "remember":
                lines = list(remember(server, _listed(req, "items")))
            else:
                lines = [f"? unknown request {str(op)[:40]!r}"]
            conn.settimeout(REQUEST_WAIT)  # the answer fits the socket's buffer: a peer that reads it not is left
            conn.sendall(("".join(line + "\n" for line in lines) + "OK\n").encode())
        except (OSError, ValueError) as exc:
            print(f"echo: control request failed: {exc}", file=sys.stderr, flush=True)


def _listed(req: dict, key: str) -> list:
    """A request's list (a peer's mistake, anything else, is an empty one: the server stays up)."""
    value = req.get(key)
    return value if isinstance(value, list) else []


def removed(server: EchoServer, cid: str) -> str | None:
    """The answer to removing a container: D once its thread left the pod (or its held pidfd was let go), E while
    its thread is still in the pod's namespaces, which then hold it (the pod's stop says so: stopping.drop_echo);
    None when it was not served."""
    served = cid in server.threads
    left, held = server.remove(cid), server.drop(cid)
    if served and not left:
        return f"E {cid} its thread is still in its pod"
    return f"D {cid}" if left or held else None


def remember(server: EchoServer, items: list) -> Iterator[str]:
    """How containers exited, as the server this one replaced told them (echo_upgrade.py): each item's (id, pid,
    start, wait status) told by ``exits`` from now on, as of an echo container it stopped itself, until the
    container is served or held anew. ``M <id>`` each."""
    for item in items:
        item = item if isinstance(item, dict) else {}
        cid, pid, start, status = (item.get(k) for k in ("id", "pid", "start", "status"))
        if not (isinstance(cid, str) and all(isinstance(v, int) for v in (pid, start, status))):
            yield f"E {cid} not an exit"
            continue
        if cid in server.threads or cid in server.held:
            continue  # served or held now: how its run ends is this server's to tell
        server.stopped[cid] = (pid, start, status)
        yield f"M {cid}"
