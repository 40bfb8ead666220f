"""The lab's echo server seen from netlab: start it, ask it to serve or drop containers, stop it.

The server's side is echoserver.py. It is found through its control socket,
``<state dir>/<lab>/echo.sock``: the process listening there (the socket's
peer credentials name it) is the lab's echo server, so no pid is recorded
for it and one started by an ``up`` that was killed before it saved the
state is found all the same.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.kernel import unixpath
from netlab.kernel.pidfd import SCM_MAX_FD
from netlab.kernel.sigpipe import stdin_fed
from netlab.realize.lab_lock import held_fd
from netlab.realize import state_dir
from netlab.realize.state_dir import lab_dir
from netlab.workload.containers import log_path, logs_refused
from netlab.workload.echocontrol import UNVERSIONED

READY_TIMEOUT = 5.0  # seconds up waits for echo containers to listen, all together (plus 2 ms each)
CONTROL_TIMEOUT = 5.0  # seconds a running server may take to answer a request (plus 2 ms per container)
# Seconds the server may be busy with another peer's request before it gets to ours, waited for on top of
# CONTROL_TIMEOUT by a request whose failure costs every pod's echo container (ask_busy): the work of one request (an
# add: echoserver.READY_WAIT), and a server of an older netlab, which read one peer at a time, up to 10 s each (this
# one reads every peer's request as it comes and drops one not whole within echocontrol.REQUEST_WAIT).
BUSY_WAIT = 10.0


control_path = state_dir.control_path


def server_log(lab_name: str) -> str:
    return os.path.join(lab_dir(lab_name), "echo.log")


@dataclass
class Answer:
    """What the server said about each container: ``ready`` id -> (tid, start time), ``errors`` id -> why."""

    ready: dict[str, tuple[int, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)  # command containers whose pidfd the server keeps
    exits: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # id -> (pid, start, wait status)
    health: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # health check -> (port, status, local)
    server: int | None = None
    version: int | None = None  # the control protocol the server speaks (``version``: echocontrol.PROTOCOL)
    unknown: list[str] = field(default_factory=list)  # requests the server does not know (an older netlab's)
    complete: bool = False  # the answer's last line came
    stderr: str = ""

    def read(self, text: str) -> None:
        for line in text.split("\n"):
            kind, _, rest = line.partition(" ")
            cid, _, arg = rest.partition(" ")
            if kind == "R":
                tid, _, start = arg.partition(" ")
                if tid.isdigit() and start.isdigit():
                    self.ready[cid] = (int(tid), int(start))
            elif kind == "E":
                self.errors[cid] = arg
            elif kind == "D":
                self.removed.add(cid)
            elif kind == "K":
                self.held.add(cid)
            elif kind in ("X", "C"):  # an exit (pid, start, wait status); a health check (port, status, local)
                fields = arg.split(" ")
                if len(fields) == 3 and all(f.lstrip("-").isdigit() for f in fields):
                    a, b, c = (int(f) for f in fields)
                    (self.exits if kind == "X" else self.health)[cid] = (a, b, c)
            elif kind == "V" and cid.isdigit():
                self.version = int(cid)
            elif kind == "?":
                self.unknown.append(rest)
            elif kind == "P" and arg.isdigit():
                self.server = int(arg)
            elif kind in ("S", "H"):
                self.server = int(cid) if cid.isdigit() else self.server
                self.complete = self.complete or kind == "S"
            elif kind == "OK":
                self.complete = True


# --- a new server ---------------------------------------------------------------------------


def launch_echo(specs: list[dict], control: str | None = None, log: str | None = None) -> subprocess.Popen:
    """Start an echo server for these containers (through its launcher); :func:`await_echo` reads its answer.

    ``control``: the lab's control socket, for later requests (without one the
    server serves these containers until it is stopped). A fresh interpreter,
    not a fork of this process: nothing of the CLI (its lock file, threads and
    netlink sockets) is inherited.
    """
    launcher = start_launcher(control, log)
    send_specs(launcher, specs)
    return launcher


ECHO_SERVER = "netlab.workload.echoserver"  # the module the lab's echo server runs (pod_teardown.is_echo_server)


def start_launcher(control: str | None = None, log: str | None = None) -> subprocess.Popen:
    """:func:`launch_echo`'s launcher, started now: it loads Python and netlab's echo server, then waits
    for its containers' specs (:func:`send_specs`); nothing listens or binds before they come.

    It shares the lab's lock, when this process holds it, until its server listens on ``control`` (or fails to):
    an ``up`` killed meanwhile leaves a server starting that ``down`` cannot find yet (nothing listens), which would
    make its socket and log in the lab's folder as ``down`` removed it (the folder left unmarked, no lab's, every
    later ``up`` of the lab refused). ``down`` waits for the lock, then finds the server there and stops it."""
    argv = [sys.executable, "-I", "-m", ECHO_SERVER]
    lock = held_fd(os.path.basename(os.path.dirname(control))) if control else None
    argv += ["--control", control] if control else []
    argv += ["--log", log] if log else []
    argv += ["--lock-fd", str(lock)] if lock is not None else []
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            close_fds=True, pass_fds=() if lock is None else (lock,), start_new_session=True,
                            cwd="/")


def await_loaded(launcher: subprocess.Popen, timeout: float = READY_TIMEOUT) -> bool:
    """Wait, bounded, until the launcher has loaded Python and netlab's echo server (its ``L`` line, read off its
    output: nothing else comes before its specs); False when it did not in time (or ended)."""
    assert launcher.stdout
    fd, got = launcher.stdout.fileno(), b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while not got.endswith(b"\n") and poller.poll(max(0.0, deadline - time.monotonic()) * 1000):
        chunk = os.read(fd, 1)  # byte by byte: what follows the line is read_launch's
        if not chunk:
            return False
        got += chunk
    return got == b"L\n"


def send_specs(launcher: subprocess.Popen, specs: list[dict]) -> None:
    """The specs of the containers a launcher's server starts with (it reads them to the end of input)."""
    assert launcher.stdin
    stdin_fed(launcher.stdin, json.dumps(specs).encode())


def read_launch(launcher: subprocess.Popen, count: int) -> Answer:
    """The launcher's and the server's reports, read until both closed the pipe (or the deadline).

    The pipe closes when the launcher (after its ``P`` line) and the server
    (after its last ``R``/``E`` line and ``S``) have closed it; stopping at the
    last "ready" instead once killed a launcher with a broken pipe before it
    reported, and left a listening server unrecorded. At the deadline the
    launcher is killed, and what was written is still read.
    """
    out, err = _read_reports(launcher, time.monotonic() + READY_TIMEOUT + 0.002 * count)
    answer = Answer(stderr=err.decode(errors="replace").strip())
    answer.read(out.decode(errors="replace"))
    return answer


def abort_launch(launcher: subprocess.Popen) -> None:
    """A launched server nobody will wait for (the run that launched it failed or was stopped first) goes, whatever
    it is doing: one still starting (loading, binding its control socket) listens nowhere yet, so
    :func:`stop_server` would not find it, and it would go on to listen in a lab folder being removed, serving
    namespaces being deleted. The launcher names the server it forked (its ``P`` line, written before it exits):
    a launcher still running is killed first (it forks no server then), and that very process is stopped."""
    if launcher.poll() is None:
        launcher.kill()
    launcher.wait()
    assert launcher.stdout and launcher.stderr
    os.set_blocking(launcher.stdout.fileno(), False)  # the server, alive, holds the pipe: what is there, no more
    try:
        out = launcher.stdout.read() or b""
    except OSError:
        out = b""
    finally:
        launcher.stdout.close()
        launcher.stderr.close()
    answer = Answer()
    answer.read(out.decode(errors="replace"))
    if answer.server is not None:
        kill.terminate([answer.server], proc.running)


def await_echo(launcher: subprocess.Popen, specs: list[dict], pods: dict) -> list[str]:
    """Wait, bounded, until a new server listens for every container; record each container's thread."""
    return record(read_launch(launcher, len(specs)), specs, pods)


def record(answer: Answer, specs: list[dict], pods: dict) -> list[str]:
    """Each container's record gets its thread (pid, start time) or its error; returns the problems, in words."""
    problems = []
    for spec in specs:
        cid = spec["id"]
        pod, cname = cid.split("/", 1)
        crec = pods[pod]["containers"][cname]
        if cid in answer.ready:
            crec["pid"], crec["start"] = answer.ready[cid]
            crec.pop("error", None)
            continue
        why = answer.errors.get(cid)
        if why is None:
            last = answer.stderr.splitlines()[-1] if answer.stderr else ""
            why = last or f"no answer from the echo server within {READY_TIMEOUT:.0f} s"
        for key in ("pid", "start"):
            crec.pop(key, None)
        crec["error"] = why
        problems.append(f"pod {pod} container {cname}: could not start the echo server: {why}")
    return problems


def _read_reports(launcher: subprocess.Popen, deadline: float) -> tuple[bytes, bytes]:
    """What the launcher and the server write on stdout and stderr, until both close or the deadline.

    stderr too: a server that fails before it redirects its output reports
    there, and it holds that pipe open as long as it lives.
    """
    assert launcher.stdout and launcher.stderr
    out_fd, err_fd = launcher.stdout.fileno(), launcher.stderr.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    open_fds = set(bufs)

    def read_some(timeout: float) -> bool:
        """One select round; False when nothing came within ``timeout``."""
        poller = select.poll()
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        readable = [fd for fd, _ev in poller.poll(max(0.0, timeout) * 1000)]
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                bufs[fd] += chunk
            else:
                open_fds.discard(fd)
        return bool(readable)

    while open_fds and time.monotonic() < deadline:
        read_some(deadline - time.monotonic())
    if launcher.poll() is None:
        launcher.kill()  # stuck past the deadline; the server is in a session of its own
    launcher.wait()
    while open_fds and read_some(0):  # what was written before the kill
        pass
    launcher.stdout.close()
    launcher.stderr.close()
    return bytes(bufs[out_fd]), bytes(bufs[err_fd])


# --- the running server -----------------------------------------------------------------------


_connect = unixpath.connect


def server_pid(lab_name: str) -> int | None:
    """The pid of the process listening on the lab's control socket (answering or not: SIGSTOP), or None."""
    return unixpath.peer_pid(control_path(lab_name))


def ask(lab_name: str, request: dict, count: int = 0, fds: Sequence[int] = (), patience: float = 0.0) -> Answer | None:
    """Send one request to the lab's running server (``fds`` go with it, in order); its answer, or None (no
    server, or no answer in time: CONTROL_TIMEOUT, plus ``patience`` seconds for a server that is busy)."""
    sock = _connect(control_path(lab_name), CONTROL_TIMEOUT + 0.002 * count + patience)
    if sock is None:
        return None
    answer = Answer()
    data = json.dumps(request).encode()
    with sock:
        try:
            # A message carries at most SCM_MAX_FD descriptors: each batch rides on one byte of the request.
            batches = [fds[i:i + SCM_MAX_FD] for i in range(0, len(fds), SCM_MAX_FD)]
            for i, batch in enumerate(batches):
                socket.send_fds(sock, [data[i:i + 1]], list(batch), socket.MSG_NOSIGNAL)
            sock.sendall(data[len(batches):], socket.MSG_NOSIGNAL)  # a server gone: EPIPE, and no SIGPIPE
            sock.shutdown(socket.SHUT_WR)
            data = bytearray()
            while chunk := sock.recv(1 << 16):
                data += chunk
        except OSError:  # timed out (a stopped server), or it went away
            return None
    answer.read(data.decode(errors="replace"))
    return answer if answer.complete else None


def ask_busy(lab_name: str, request: dict, count: int = 0) -> Answer | None:
    """:func:`ask`, waiting out a server busy with another peer's request (:data:`BUSY_WAIT`); a server stopped
    (SIGSTOP) is not asked, nor is a lab without one (None at once: it would only keep the asker waiting)."""
    server = server_pid(lab_name)
    if server is None or proc.proc_state(server) == "T":
        return None
    return ask(lab_name, request, count, patience=BUSY_WAIT)


def protocol(lab_name: str) -> int | None:
    """The control protocol the lab's running server speaks (echocontrol.PROTOCOL: this netlab's); None when it
    cannot be told (no server, a stopped one, no answer in time). A server that does not know the question is
    an older netlab's: echocontrol.UNVERSIONED."""
    server = server_pid(lab_name)
    if server is None or proc.proc_state(server) == "T":
        return None
    answer = ask(lab_name, {"op": "version"})
    if answer is None:
        return None
    if answer.version is not None:
        return answer.version
    return UNVERSIONED if answer.unknown else None  # `? unknown request 'version'`: it knows not the question


def hold(lab_name: str, items: Sequence[tuple[str, proc.ProcId, int]],
         marks: Mapping[str, str] | None = None) -> set[str]:
    """Hand the lab's server a pidfd of each command container, (id, process, pidfd), to keep while the lab
    lives, the name of its log (``<pod>.<container>.log``, the server keeps it under LOG_MAX) and its run's
    environment entry (``marks``: tasks.run_mark; what the server kills once it exits carries it); the ids it
    holds (the pidfds stay the caller's to close)."""
    mine = logs_refused(lab_name) is None  # a logs/ of a user's: the server truncates nothing in it
    request = {"op": "hold", "items": [{"id": cid, "pid": p.pid, "start": p.start,
                                        **({"mark": marks[cid]} if marks and cid in marks else {}),
                                        **({"log": os.path.basename(log_path(lab_name, *cid.split("/", 1)))}
                                           if mine else {})}
                                       for cid, p, _fd in items]}
    answer = ask(lab_name, request, len(items), [fd for _cid, _p, fd in items]) if items else None
    return answer.held if answer is not None else set()


def exits(lab_name: str, ids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """How the command containers ``ids`` exited, as far as the lab's server knows: id -> (pid, start time,
    wait status) of those whose pidfd it holds and whose process has exited (reaped by init, or a zombie yet)."""
    pid = server_pid(lab_name) if ids else None
    if pid is None or proc.proc_state(pid) == "T":  # none, or stopped (it would keep us waiting)
        return {}
    answer = ask(lab_name, {"op": "exits", "ids": list(ids)}, len(ids))
    return answer.exits if answer is not None else {}


def stop_server(lab_name: str, grace: float = 3.0) -> list[int]:
    """SIGTERM (SIGKILL after ``grace``) the lab's echo server, whatever its state; returns survivors (none expected).

    The process is named by the control socket's peer credentials, and checked
    again once its pidfd is open (it still listens there), so a pid recycled
    in between is never signalled.
    """
    pid = server_pid(lab_name)
    if pid is None:
        return []
    return kill.terminate([pid], lambda p: server_pid(lab_name) == p, grace=grace)
