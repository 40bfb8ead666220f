"""The lab's echo server: one process serves every echo container of a lab.

A pod needs a process only where the user asked for a command. Every
container without one runs netlab's echo server (echo.py), and all of a lab's
are served by one process:

- each echo container is a thread of it (:class:`PodThread`) that joins its
  pod's network and UTS namespaces, opens the container's listening sockets
  there (a socket keeps the namespace it was opened in) and stays, parked,
  until the container is removed; then it goes back to the server's own
  namespaces and ends. The container's recorded pid is this thread's id: a
  task in the pod's namespaces, like any container's process
  (``/proc/<tid>/ns/net`` is the pod's, ``nsenter -t <tid> -u hostname``
  prints the pod's name, and ``down``, which stops every task in the lab's
  namespaces, finds it). The server itself stays in the namespaces it was
  started in and opens no network socket there;
- the main thread runs one :class:`~netlab.workload.echo.EchoLoop` for every
  container's sockets and writes each container's log file;
- it listens on a control socket, ``<state dir>/<lab>/echo.sock`` (in the
  lab's root-only directory; root peers only): ``up`` adds and replaces
  containers and removes them through it, one JSON request per connection
  answered with one line per container (launch.py is the other side; the
  socket's side is echocontrol.py: each peer's request is read in the loop
  as it comes, and a peer that has not sent it whole within a second is
  dropped, never holding the others);
- it holds a pidfd of each of the lab's command containers, which ``up`` hands
  it over the control socket (SCM_RIGHTS) as it starts them: the containers
  are init's children, and a kernel that keeps exit statuses with pidfds
  (Linux 6.15, kernel/pidfd.py) tells the holder how each exited, so ``get
  pods``, ``status`` and a watcher started later can say it. A lab whose pods
  all run commands gets a server for this alone.

It also answers for kube-proxy on every node: its health server on 10256 and
the Services' healthCheckNodePorts (health.py, healthserve.py), from sockets
opened in the nodes' namespaces; so a lab with a node always has its server.

It exits when its last container is removed (and no command container's
pidfd is held, and no health check is served, and none was lost to a listening
socket destroyed: it stays to tell status so), and when its control socket is
removed or replaced (its lab is gone): it never outlives its lab by more than
:data:`WATCH_SECONDS`. Its own output (a traceback, should it fail) goes to
``<state dir>/<lab>/echo.log``; each container's lines go to the container's
log.

Started through a launcher, so that it is re-parented to init at once and no
netlab process ever has to reap it: ``python -m netlab.workload.echoserver
[--control PATH] [--log PATH]`` reports ``L`` once loaded, reads the first containers' specs (JSON) on
stdin, forks the server and reports ``P - <pid>``; the server reports, for
each container, ``R <id> <tid> <start time>`` once it listens or ``E <id>
<why>``, then ``S <pid>``, on the same pipe, and closes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from typing import Iterator

from netlab.kernel import netns as nsmod
from netlab.kernel import pidfd
from netlab.kernel.processes import ProcId, kill_run, set_comm, start_time, zombie_status
from netlab.model.naming import DNS_LABEL
from netlab.workload import healthserve
from netlab.workload.echo import EchoLoop, Log, Served, listen, listening_line, start_over_if_full
from netlab.workload.echo_log import START_OVER_FLAGS
from netlab.workload.echocontrol import Control, bind_control, still_there

STACK = 256 * 1024  # a parked thread touches a few pages of it
READY_WAIT = 5.0  # seconds a container's thread may take to join its pod and listen
CONTROL_WAIT = 10.0  # seconds a server started for command containers alone waits for their pidfds
WATCH_SECONDS = 2.0  # how often the server checks that its control socket is still its lab's
PRUNE_SECONDS = 0.5  # how often it looks for a node namespace deleted under a health check (healthserve.prune)
LOG_CHECK_SECONDS = 10.0  # how often it looks at command containers' logs (the kubelet's containerLogMonitorInterval)
_LABEL = DNS_LABEL.pattern.strip("^$")
LOG_NAME = re.compile(rf"{_LABEL}\.{_LABEL}\.log")  # <pod>.<container>.log: both names DNS labels


class PodThread(threading.Thread):
    """One echo container: a thread in its pod's network and UTS namespaces, holding its listening sockets."""

    def __init__(self, spec: dict, home: tuple[int, int]):
        super().__init__(name=f"echo {spec.get('id')}", daemon=True)
        self.spec, self.home = spec, home
        self.ready, self.release, self.left = threading.Event(), threading.Event(), threading.Event()
        self.socks: list[socket.socket] = []
        self.error: str | None = None
        self.tid = self.ticks = 0
        self.moved = False  # this thread joined the pod's namespaces

    def run(self) -> None:
        try:
            self._enter()
            self.socks = listen([(int(p), str(proto)) for p, proto in self.spec["ports"]])
            self.tid = threading.get_native_id()
            self.ticks = start_time(self.tid) or 0
            set_comm(f"echo {self.spec['pod']}")
        except BaseException as exc:  # noqa: BLE001 - reported by the server
            self.error = str(exc).replace("\n", " ")[:300] or type(exc).__name__
        finally:
            self.ready.set()
        if self.error is None:
            self.release.wait()
        try:
            if self.moved:  # leave the pod's namespaces before saying so: `down` may look for tasks in them next
                nsmod.setns(self.home[0], nsmod.CLONE_NEWNET)
                nsmod.setns(self.home[1], nsmod.CLONE_NEWUTS)
        finally:
            self.left.set()

    def _enter(self) -> None:
        net_fd = nsmod.open_fd(self.spec["netns"])  # the name is checked; the path derived from it
        uts_fd = os.open(self.spec["uts"], os.O_RDONLY | os.O_CLOEXEC) if self.spec.get("uts") else None
        try:
            nsmod.setns(net_fd, nsmod.CLONE_NEWNET)
            self.moved = True
            if uts_fd is not None:
                nsmod.setns(uts_fd, nsmod.CLONE_NEWUTS)
        finally:
            os.close(net_fd)
            if uts_fd is not None:
                os.close(uts_fd)


# The wait status of an echo container the server stopped serving (netlab break endpoint-pod-down, a pod up
# removes): killed by SIGTERM, which the kubelet sends a container it stops, so kubectl's Error, exit code 143.
STOPPED_STATUS = int(signal.SIGTERM)
LOST_STATUS = 1 << 8  # an echo container whose listening socket was destroyed: exited with code 1


class EchoServer:
    """The containers this process serves, each a :class:`PodThread` whose sockets the loop answers on."""

    def __init__(self, loop: EchoLoop, logs_dir: str | None = None):
        self.loop = loop
        self.logs_dir = logs_dir  # the lab's log folder, beside its control socket
        self.home = (nsmod.current_fd("net"), nsmod.current_fd("uts"))
        self.threads: dict[str, PodThread] = {}
        self.logs: dict[str, Log] = {}
        self.held: dict[str, tuple[int, int, int]] = {}  # command container -> (its pidfd, pid, start time)
        self.held_logs: dict[str, str] = {}  # command container -> its log file, which it writes itself
        self.ended: set[str] = set()  # held command containers that exited, whose session's rest was killed
        self.marks: dict[str, bytes] = {}  # command container -> its run's environment entry (tasks.run_mark)
        # Echo containers it stopped serving and that were not started again: id -> (tid, start time), told
        # exited as a container the kubelet stops is (SIGTERM, 143) by exits(), until served again
        self.stopped: dict[str, tuple[int, int, int]] = {}  # id -> (tid, start time, wait status)
        # kube-proxy's health checks: id -> ((node namespace, port, its identity), what answers): healthserve.py
        self.health: dict[str, tuple[healthserve.Where, Served]] = {}
        # Containers and checks it stopped serving as a listening socket of theirs was destroyed, not served since:
        # it stays (until its lab goes, or they are served again) to tell status so
        self.lost: set[str] = set()
        self.lost_checks: set[str] = set()

    def add(self, specs: list[dict]) -> Iterator[str]:
        """Serve these containers (a container already served is replaced); one report line each."""
        threads = []
        for spec in specs:
            cid = str(spec.get("id"))
            self.remove(cid)
            self.stopped.pop(cid, None)  # a new run: how the one before ended is not this one's
            t = PodThread(spec, self.home)
            try:
                t.start()
            except RuntimeError as exc:  # no more threads
                t.error = str(exc)
                t.ready.set()
            threads.append((cid, t))
        for cid, t in threads:
            yield self._admit(cid, t)

    def _admit(self, cid: str, t: PodThread) -> str:
        if not t.ready.wait(READY_WAIT):
            t.release.set()
            return f"E {cid} did not listen within {READY_WAIT:.0f} s"
        try:
            fd = self.open_log(str(t.spec["log"]), os.O_RDWR | os.O_CREAT | os.O_APPEND)
            log = Log(fd if fd is not None else os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC))
        except (OSError, KeyError) as exc:
            for s in t.socks:
                s.close()
            t.release.set()
            return f"E {cid} cannot open its log: {exc}"
        if t.error is not None:
            log.write(f"echo: cannot listen: {t.error}")
            log.close()
            return f"E {cid} {t.error}"
        ports = [(int(p), str(proto)) for p, proto in t.spec["ports"]]
        self.loop.serve(Served(cid, t.spec["pod"], log), t.socks)
        if t.spec.get("note"):  # why the same run is served anew (echo_upgrade.py: its server was replaced)
            log.write(str(t.spec["note"]))
        log.write(listening_line(t.spec["pod"], ports))
        log.flush()
        self.threads[cid], self.logs[cid] = t, log
        return f"R {cid} {t.tid} {t.ticks}"

    def remove(self, cid: str, status: int = 0) -> bool:
        """Stop serving a container: close its sockets; its thread leaves the pod and ends, told exited with
        ``status`` (a wait status; 0: :data:`STOPPED_STATUS`). False: not served, or its thread still in the pod
        after READY_WAIT (a machine too busy to run it)."""
        self.lost.discard(cid)  # removed on purpose: no more the lost one, whose end status says
        t = self.threads.pop(cid, None)
        if t is None:
            return False
        self.loop.drop(cid)
        t.release.set()
        left = t.left.wait(READY_WAIT)
        self.logs.pop(cid).close()
        self.stopped[cid] = (t.tid, t.ticks, status or STOPPED_STATUS)
        return left

    def forget_lost(self) -> None:
        """Stop serving each container and health check a listening socket of which the kernel destroyed
        (``ss -K``: EchoLoop.lost): it answers there no more, so it is not served, as status tells; the next
        ``up`` serves it anew. A container is told exited with code 1, as a server whose accept fails is."""
        while self.loop.lost:
            key = self.loop.lost.pop(0)
            if key in self.health:
                healthserve.lost(self, key)
            elif key in self.threads:
                self.logs[key].write("echo: a listening socket was destroyed (ss -K?): stopped serving")
                self.remove(key, LOST_STATUS)
                self.lost.add(key)

    def hold(self, items: list, fds: list[int]) -> Iterator[str]:
        """Keep a pidfd of each command container named (one fd each, in order), replacing one held before."""
        for item, fd in zip(items, fds):
            item = item if isinstance(item, dict) else {}
            cid, pid, start = str(item.get("id")), item.get("pid"), item.get("start")
            if not (isinstance(pid, int) and isinstance(start, int)) or pidfd.pid_of(fd) not in (pid, -1):
                os.close(fd)  # -1 above: it exited and was reaped already
                yield f"E {cid} not a pidfd of pid {pid}"
                continue
            self.drop(cid)
            self.stopped.pop(cid, None)  # its run is this one: how one before it ended (remembered) is not its
            self.held[cid] = (fd, pid, start)
            mark = item.get("mark")
            if isinstance(mark, str) and "=" in mark:
                self.marks[cid] = mark.encode()
            log = item.get("log")
            if self.logs_dir and isinstance(log, str) and LOG_NAME.fullmatch(log):  # a name in the lab's folder
                self.held_logs[cid] = os.path.join(self.logs_dir, log)
            yield f"K {cid}"
        for fd in fds[len(items):]:
            os.close(fd)

    def drop(self, cid: str) -> bool:
        """Let go of a command container's pidfd (it was replaced, or its pod went)."""
        held = self.held.pop(cid, None)
        self.held_logs.pop(cid, None)
        self.marks.pop(cid, None)
        self.ended.discard(cid)
        if held is not None:
            os.close(held[0])
        return held is not None

    def keep_logs(self) -> None:
        """The running command containers' logs past LOG_MAX start over with their newest lines (the server's
        own containers' do as they write): a cluster DNS that logs every query, a user's chatty command, kept
        from filling /run. As the kubelet rotates only running containers' logs, an exited one's is left."""
        for cid, path in self.held_logs.items():
            if self.runs(cid):  # an exited container writes nothing more: its last lines stay as they are
                try:
                    fd = self.open_log(path, START_OVER_FLAGS)
                except OSError:
                    continue  # gone with its pod, or no file of ours
                if fd is not None:  # else logs/ is a user's now: nothing in it is cut
                    start_over_if_full(fd)

    def open_log(self, path: str, flags: int) -> int | None:
        """A container's log ``path``, opened: one in the lab's ``logs`` folder fd-relative, in that folder opened
        as ``up`` checked it (lab_writes: no symlink followed, on the lab folder's mount), so a folder of a user's
        swapped in since (a symlink, a bind mount) has nothing written in it: None then (the caller writes to
        /dev/null, as ``up`` said the containers' output goes there; nothing to cut). Any other path (/dev/null,
        a server of no lab's) by its name, never through a symlink. Raises OSError as open does."""
        from netlab.realize import lab_writes

        flags |= os.O_NOFOLLOW | os.O_CLOEXEC
        name = os.path.basename(path)
        if not (self.logs_dir and os.path.dirname(path) == self.logs_dir and LOG_NAME.fullmatch(name)):
            return os.open(path, flags, 0o600)
        try:
            dfd = lab_writes.open_dir_at(os.path.dirname(self.logs_dir), ["logs"])
        except lab_writes.Refused:
            return None
        if dfd is None:
            raise FileNotFoundError(2, "No such file or directory", self.logs_dir)
        try:
            return os.open(name, flags, 0o600, dir_fd=dfd)
        finally:
            os.close(dfd)

    def runs(self, cid: str) -> bool:
        """Whether the held command container still runs (its pidfd is readable once it has exited)."""
        held = self.held.get(cid)
        if held is None:
            return False
        poller = select.poll()
        poller.register(held[0], select.POLLIN)
        return not poller.poll(0)

    def end_exited(self) -> None:
        """Every process left of a held command container that exited gets SIGKILL: those of its session (its
        pid: kernel/spawning.py), as the kernel kills every process of a container's PID namespace when its
        first one exits (QA q51 2: a shell's background server lived on, answered, and held the port of the
        container's next run). Only the run's own: those carrying its id in their environment (``mark``: the
        hold request's; processes.run_members), never a process of another session that has the same id (the
        run's pid handed out again: QA q52 3). A process that left the session (setsid) is left to down.

        A member may fork between a scan and its SIGKILL, so the scan and the kill are repeated until a scan finds
        none (QA q52 1), at most processes.RUN_KILL_ROUNDS times here, without a wait: the echo containers are served by
        this loop. A run with members left after that is tried again at the next call."""
        for cid in list(self.held):
            if cid in self.ended or self.runs(cid):
                continue
            _fd, pid, start = self.held[cid]
            if kill_run(ProcId(pid, start), self.marks.get(cid, b"")):
                self.ended.add(cid)

    def exits(self, ids: list) -> Iterator[str]:
        """How each held container named exited: ``X <id> <pid> <start> <wait status>``; nothing for one that
        runs or is not held. An echo container this server stopped serving (and did not serve again) is told
        as its thread (tid, start) with :data:`STOPPED_STATUS` (:data:`LOST_STATUS`: its socket was destroyed).

        The pidfd has the status once init has reaped the container; until then
        (init reaps when it gets to it: a second and more on some machines) the
        container is a zombie, whose status /proc shows. Both are asked, so a
        container is told exited with its code from the moment it dies, not
        first exited without one and then with it.
        """
        for cid in ids:
            stopped = self.stopped.get(str(cid))
            if stopped is not None:  # an echo container it stopped serving: ended as by SIGTERM
                yield f"X {cid} {stopped[0]} {stopped[1]} {stopped[2]}"
                continue
            held = self.held.get(str(cid))
            if held is None:
                continue
            fd, pid, start = held
            status = pidfd.exit_status(fd)
            if status is None and pidfd.pid_of(fd) == pid:  # not reaped: the pid is still that very process's
                status = zombie_status(ProcId(pid, start))
            if status is not None:
                yield f"X {cid} {pid} {start} {status}"

    def sync_health(self, specs: list[dict]) -> Iterator[str]:
        """Serve exactly these health checks, kube-proxy's on each node (healthserve.sync)."""
        return healthserve.sync(self, specs)

    def health_served(self) -> Iterator[str]:
        """``C <id> <port> <status> <localEndpoints>`` for each health check served (healthserve.served)."""
        return healthserve.served(self)

    def fail(self, why: str) -> None:
        """The server is going down on an error: say so in every container's log."""
        for log in self.logs.values():
            log.write(f"echo: the lab's echo server stopped: {why}")
            log.flush()


# --- the process ----------------------------------------------------------------------------


def serve(specs: list[dict], report: int, control_path: str | None, lock: int | None = None) -> int:
    """In the forked server: listen on the control socket, serve ``specs``, report, then loop. ``lock``: the lab's
    lock, shared with the ``up`` that started it, released once it listens (or cannot): launch.start_launcher."""
    threading.stack_size(STACK)
    loop = EchoLoop()
    server = EchoServer(loop, os.path.join(os.path.dirname(control_path), "logs") if control_path else None)
    control, peers = None, None
    if control_path:
        try:
            control, ino = bind_control(control_path)
        except OSError as exc:
            release(lock)
            why = str(exc).replace("\n", " ")[:300]
            os.write(report, "".join(f"E {s.get('id')} {why}\n" for s in specs).encode())
            os.close(report)
            return 1
        peers = Control(server, loop, control)
    release(lock)
    for line in server.add(specs):
        os.write(report, (line + "\n").encode())
    os.write(report, f"S {os.getpid()}\n".encode())
    os.close(report)
    # Started for command containers alone, it has nothing to keep until up hands it their pidfds.
    idle_until = time.monotonic() + (0 if specs else CONTROL_WAIT)
    logs_at = time.monotonic() + LOG_CHECK_SECONDS
    prune_at = time.monotonic() + PRUNE_SECONDS
    try:
        while server.threads or server.held or server.health or server.lost or server.lost_checks \
                or time.monotonic() < idle_until:
            if server.threads or server.held or server.health:
                idle_until = 0.0  # it has had something: it ends when that is gone
            # a control peer's deadline too: one that sent no whole request is dropped on time
            loop.run_once(min(WATCH_SECONDS, max(0.0, logs_at - time.monotonic()),
                              peers.wait() if peers is not None else WATCH_SECONDS))
            server.forget_lost()
            if peers is not None:
                peers.expire(time.monotonic())
            server.end_exited()
            if time.monotonic() >= logs_at:
                server.keep_logs()
                logs_at = time.monotonic() + LOG_CHECK_SECONDS
            if server.health and time.monotonic() >= prune_at:  # a deleted node's namespace let go
                healthserve.prune(server)
                prune_at = time.monotonic() + PRUNE_SECONDS
            if control_path and not still_there(control_path, ino):
                server.fail("its control socket is gone (the lab was taken down)")
                break
    except BaseException as exc:  # noqa: BLE001 - logged; the process ends
        server.fail(f"{type(exc).__name__}: {exc}")
        raise
    return 0


def release(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)


def _server_child(specs: list[dict], report: int, args: argparse.Namespace) -> None:
    """The forked server: a session of its own, output on its log, nothing else inherited; never returns."""
    code = 1
    try:
        os.setsid()
        null_fd = os.open(os.devnull, os.O_RDWR)
        log_fd = (os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
                  if args.log else null_fd)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        keep = sorted({report, args.lock_fd if args.lock_fd is not None else report})
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[-1])
        os.closerange(keep[-1] + 1, 1 << 16)
        os.chdir("/")
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        set_comm("netlab-echo")
        code = serve(specs, report, args.control, args.lock_fd)
    except BaseException as exc:  # noqa: BLE001 - logged, then exit
        try:
            print(f"echo: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            os._exit(1)
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netlab.workload.echoserver",
                                 description="Serve a lab's echo containers (specs as JSON on stdin).")
    ap.add_argument("--control", help="Control socket to listen on (the lab's echo.sock).")
    ap.add_argument("--log", help="The server's own output (a file, appended to).")
    ap.add_argument("--lock-fd", type=int, help="The lab's lock (an inherited fd), held until it listens.")
    args = ap.parse_args(argv)
    os.write(1, b"L\n")  # loaded: what comes after the specs is the server's own work (launch.await_loaded)
    specs = json.loads(sys.stdin.buffer.read() or b"[]")
    report = os.dup(1)
    try:
        pid = os.fork()
    except OSError as exc:
        os.write(report, "".join(f"E {s.get('id')} fork: {exc}\n" for s in specs).encode())
        return 1
    if pid == 0:
        _server_child(specs, report, args)
    os.write(report, f"P - {pid}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
