"""Processes of a lab: started inside a pod's namespaces, found and stopped by namespace identity.

Identity, not names: a namespace is the pair (device, inode) that ``stat`` gives
for its file (``/run/netns/<name>``, a bind mount of the nsfs object) and for
``/proc/<pid>/task/<tid>/ns/net`` of every thread inside it. ``down`` compares
these pairs, never command lines or name patterns, so it stops exactly what
runs in the lab's namespaces (a learner's ``ip netns exec demo-fedora-1 bash``
too, and the lab's echo server, whose threads sit in the pods) and nothing
else. Namespaces are per thread: a process is in a lab when any of its
threads is.

A task is remembered as (id, start time in clock ticks since boot, field 22
of ``/proc/<id>/stat``): a recycled id has another start time. The id of a
thread works there as a process's does (``/proc/<tid>/stat``, ``/proc/<tid>/ns/``),
and stopping it stops its process. Signals go
through a pidfd (``pidfd_open``), which names one process for good, and
exits are awaited by polling the pidfds (a pidfd becomes readable when its
process exits), so every wait is bounded and no pid race can hit a stranger.

Containers are started with a double fork: the intermediate child (run with
:func:`netlab.kernel.child.run_in_child`, which brings its answer back)
calls ``setsid`` and forks the container, so the container is re-parented to
init when the intermediate exits (no zombies in the netlab CLI, nothing dies
with it). The container enters the pod's network and UTS namespaces, gets a
private mount namespace where ``/etc/netns/<netns>/*`` (resolv.conf, hosts)
is bind-mounted over ``/etc`` and ``/sys`` shows the namespace's devices (as
``ip netns exec`` does), and execs the command with stdout and stderr on its
log file. It closes every other descriptor first, so the CLI's lock file is
never inherited. The intermediate waits (bounded) for the exec: a pipe that
closes on exec says it happened, a line on it says why it did not.

This module is imported by the echo launcher too (a fresh interpreter that
forks hundreds of servers), so it stays light: no pyroute2.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from netlab.kernel import netns as nsmod
from netlab.kernel.child import ChildError, readable, run_in_child
from netlab.model.naming import ETC_NETNS

PR_SET_NAME = 15
EXEC_WAIT = 10.0  # seconds the intermediate child waits for the container's exec


def set_comm(name: str) -> None:
    """The process name ps/top show (15 bytes), e.g. "echo fedora-1"."""
    nsmod.libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


@dataclass(frozen=True)
class ProcId:
    """One process, for good: pid plus its start time (pids are recycled)."""

    pid: int
    start: int

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start}


def default_signals() -> None:
    """Every signal at its default, as a container runtime starts a container's process (SigIgn 0): called just
    before the exec of a container's command, or of `netlab exec`'s. Python ignores SIGPIPE and SIGXFSZ, netlab's
    parent may ignore others (SIGHUP under nohup, SIGINT and SIGQUIT in a script's `&` job), and an ignored signal
    stays ignored across exec (`yes | head -1` said "Broken pipe", exit 1, where it dies quietly, 141)."""
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with contextlib.suppress(OSError, ValueError):  # 32 and 33: the C library's own
            signal.signal(sig, signal.SIG_DFL)


def ns_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a namespace file or /proc/<pid>/ns/<kind> link; None if gone."""
    try:
        st = os.stat(path)
    except OSError:  # gone (ENOENT, ESRCH), or not ours to look at
        return None
    return st.st_dev, st.st_ino


def ns_birth(path: str) -> tuple[int, int, int] | None:
    """A pinned namespace's identity for good: (st_dev, st_ino) and the change time of its nsfs inode.

    Inode numbers of namespaces are reused once a namespace is freed (the
    lowest free number comes first), so a namespace deleted and made again
    under the same name may get its predecessor's. Its nsfs inode, though, is
    new, made when the namespace was first pinned, with that moment as its
    change time; the pin holds it, so the time stays while the namespace does
    (nothing changes a namespace file's attributes).
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat from field 3 on, None if the process is gone.

    comm (field 2) may contain spaces and parentheses: split after the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rfind(b")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in ticks), None if the process is gone."""
    rest = _stat_fields(pid)
    return int(rest[19]) if rest and len(rest) > 19 else None


def proc_state(pid: int) -> str | None:
    """Single-letter state (R, S, Z ...) of a process, None if gone."""
    rest = _stat_fields(pid)
    return rest[0].decode() if rest else None


def running(pid: int) -> bool:
    """A process (or thread) with this id exists and is not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def alive(proc: ProcId) -> bool:
    """The very process (pid and start time) still runs and is not a zombie."""
    return start_time(proc.pid) == proc.start and running(proc.pid)


def task_state(proc: ProcId) -> str | None:
    """The state letter (R, S, T ...) of this very task, a process or a thread; None once it is gone
    (exited, a zombie, or its id recycled: another start time). One read of /proc/<id>/stat."""
    rest = _stat_fields(proc.pid)
    if not rest or len(rest) <= 19 or int(rest[19]) != proc.start:
        return None
    state = rest[0].decode()
    return None if state in ("Z", "X") else state


def zombie_status(proc: ProcId) -> int | None:
    """The wait status of this very process while it is a zombie: it has exited and its parent (init, for a
    container) has not reaped it yet; None while it runs, once it is reaped, or when its id is another's.

    The kernel shows it as field 52 of /proc/<pid>/stat (Linux 3.5, to a reader
    allowed to ptrace it: root), read here with the state and start time in one
    read. A thread-group leader that exited while its other threads run on is a
    zombie too, but its status is not the process's: only a lone thread counts
    (field 20, the number of threads, is 1 once they are all gone).
    """
    rest = _stat_fields(proc.pid)
    if not rest or len(rest) <= 49 or rest[0] != b"Z" or int(rest[19]) != proc.start or rest[17] != b"1":
        return None
    return int(rest[49])


def stopped(proc: ProcId) -> bool:
    """The very process is stopped by a signal (SIGSTOP, SIGTSTP: state T): it exists but serves nothing.

    A process stopped by its debugger (state ``t``, ptrace) is not: someone is
    looking at it on purpose.
    """
    return start_time(proc.pid) == proc.start and proc_state(proc.pid) == "T"


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tasks(pid: int) -> list[str]:
    """The thread ids of a process (its own id first when it is there)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    return sorted(tids, key=lambda t: t != str(pid))


def thread_group(tid: int) -> int | None:
    """The process a thread id belongs to (its own id for a process's first thread); None if gone."""
    try:
        with open(f"/proc/{tid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


def find_in_namespaces(netns_names: Iterable[str], extra_ns_files: Iterable[str] = ()) -> dict[int, str]:
    """pid -> namespace name, for every process with a thread in one of the network namespaces ``netns_names``.

    Threads count: the lab's echo server (workload/echoserver.py) is one
    process whose threads each sit in a pod's namespaces. ``extra_ns_files``
    are other namespace files (the pods' UTS namespaces): a process with a
    thread inside one of those is included too, under that file's path. The
    calling process is never included.
    """
    wanted: dict[tuple[int, int], str] = {}
    for name in netns_names:
        ident = ns_identity(nsmod.netns_path(name))
        # A placeholder (not a mount) has the /run/netns filesystem's identity: skip it.
        if ident is not None and nsmod.is_netns_mount(name):
            wanted[ident] = name
    for path in extra_ns_files:
        ident = ns_identity(path)
        if ident is not None and nsmod.is_nsfs(path):
            wanted[ident] = path
    if not wanted:
        return {}
    me = os.getpid()
    out: dict[int, str] = {}
    for pid in _pids():
        if pid != me:
            where = _inside(pid, wanted)
            if where is not None:
                out[pid] = where
    return out


def _inside(pid: int, wanted: dict[tuple[int, int], str]) -> str | None:
    """Which of the ``wanted`` namespaces (net or UTS) a thread of process ``pid`` is in, if any."""
    for tid in _tasks(pid):
        for kind in ("net", "uts"):
            ident = ns_identity(f"/proc/{pid}/task/{tid}/ns/{kind}")
            if ident in wanted:
                return wanted[ident]
    return None


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.EINVAL):
            return None
        raise


def terminate(pids: Iterable[int], still_ours: Callable[[int], bool], grace: float = 3.0,
              kill_wait: float = 2.0) -> list[int]:
    """SIGTERM (and SIGCONT), wait up to ``grace`` s, SIGKILL the rest, wait up to ``kill_wait`` s.

    A thread id stands for its whole process (an echo container is a thread
    of the lab's echo server, which this stops). ``still_ours(pid)`` is
    called with the id given, after the process's pidfd is opened (so it
    names the same process the check sees), and decides whether to signal it
    at all. Returns the processes still running at the end (should be none).
    """
    fds: dict[int, int] = {}
    try:
        for pid in pids:
            leader = thread_group(pid) or pid
            if leader in fds:
                continue
            fd = _pidfd(leader)
            if fd is None:
                continue
            if not still_ours(pid) or (leader != pid and not os.path.exists(f"/proc/{leader}/task/{pid}")):
                os.close(fd)
                continue
            fds[leader] = fd
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
            for fd in fds.values():
                try:
                    signal.pidfd_send_signal(fd, sig)
                    if sig == signal.SIGTERM:
                        # A stopped process keeps SIGTERM pending until continued: continue it,
                        # so it exits now rather than at SIGKILL after the grace period.
                        signal.pidfd_send_signal(fd, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            _wait_exit(fds, wait)
            if not fds:
                break
        return sorted(fds)
    finally:
        for fd in fds.values():
            os.close(fd)


def _wait_exit(fds: dict[int, int], timeout: float) -> None:
    """Drop from ``fds`` (closing them) every process that exited within ``timeout``."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in fds.values():
        poller.register(fd, select.POLLIN)
    by_fd = {fd: pid for pid, fd in fds.items()}
    while by_fd:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ev in poller.poll(left * 1000):
            pid = by_fd.pop(fd, None)
            if pid is not None:
                poller.unregister(fd)
                os.close(fds.pop(pid))


def stop_namespaces(netns_names: Sequence[str], uts_files: Sequence[str] = (), grace: float = 3.0) -> list[str]:
    """Stop every process with a thread in these namespaces; returns descriptions of survivors (none expected)."""
    found = find_in_namespaces(netns_names, uts_files)
    if not found:
        return []
    wanted = {ident: name for name in netns_names if (ident := ns_identity(nsmod.netns_path(name))) is not None}
    wanted.update({ident: p for p in uts_files if (ident := ns_identity(p)) is not None})

    def still_ours(pid: int) -> bool:
        return _inside(pid, wanted) is not None

    left = terminate(found, still_ours, grace=grace)
    return [f"pid {pid} ({' '.join(cmdline(pid))[:60]}) in {found.get(pid, '?')}" for pid in left if still_ours(pid)]


# --- starting containers ------------------------------------------------------


class SpawnError(OSError):
    pass


def _etc_overrides(netns: str) -> list[tuple[str, str]]:
    """(source, target) bind mounts ``ip netns exec`` would make from /etc/netns/<netns>/."""
    base = os.path.join(ETC_NETNS, netns)
    try:
        names = sorted(os.listdir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [(os.path.join(base, n), os.path.join("/etc", n)) for n in names
            if not n.startswith(".") and os.path.lexists(os.path.join("/etc", n))]


def enter_pod_here(net_fd: int, uts_fd: int | None, netns: str, mounts: bool = True) -> None:
    """In a child about to exec: join the pod's net (and UTS) namespace and set up mounts like ip netns exec.

    A private mount namespace keeps the /etc and /sys changes to this process.
    Copying the mount table costs time in proportion to the machine's mounts
    (each lab namespace is one), so the echo server, which needs neither
    /etc/netns nor /sys, skips it (``mounts=False``). Mount failures are not
    fatal: the network namespace is what matters.
    """
    nsmod.setns(net_fd, nsmod.CLONE_NEWNET)
    if uts_fd is not None:
        nsmod.setns(uts_fd, nsmod.CLONE_NEWUTS)
    if not mounts:
        return
    try:
        nsmod.unshare(nsmod.CLONE_NEWNS)
        # Stop our mounts propagating back to the host (as `ip netns exec` does).
        nsmod.mount("none", "/", None, nsmod.MS_SLAVE | nsmod.MS_REC)
    except OSError:
        return
    try:
        nsmod.detach("/sys")
        nsmod.mount(netns, "/sys", "sysfs")
    except OSError:
        pass
    for src, dst in _etc_overrides(netns):
        try:
            nsmod.mount(src, dst, None, nsmod.MS_BIND)
        except OSError:
            pass


def _which(cmd: str, env: Mapping[str, str]) -> str:
    if "/" in cmd:
        return cmd
    for d in env.get("PATH", os.defpath).split(":"):
        full = os.path.join(d or ".", cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    raise SpawnError(errno.ENOENT, f"{cmd}: command not found (PATH={env.get('PATH', '')})")


def spawn(argv: Sequence[str], *, netns: str, uts_path: str | None, log_path: str,
          env: Mapping[str, str]) -> tuple[ProcId, int | None]:
    """Start ``argv`` in a pod's namespaces, detached; returns its identity and a pidfd of it (None if the
    kernel gave none), the caller's to close.

    The intermediate child that forks the container opens the pidfd and reads
    the start time while the container is still its child, unreaped: both
    name the container even when it has exited at once (``true``), and the
    pidfd then tells how (kernel/pidfd.py). Raises SpawnError (an OSError)
    when the command cannot be executed.
    """
    exe = _which(argv[0], env)
    net_fd = nsmod.open_fd(netns)
    uts_fd = os.open(uts_path, os.O_RDONLY | os.O_CLOEXEC) if uts_path else None
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    envb = {k.encode(): v.encode() for k, v in env.items()}
    try:
        with ours, theirs:
            pid, start, failure = run_in_child(
                _detach, (exe, list(argv), envb, net_fd, uts_fd, log_fd, null_fd, netns, theirs.fileno()),
                timeout=EXEC_WAIT + 5, what=f"the launcher of {argv[0]}")
            ours.setblocking(False)
            try:
                _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, 1)
            except BlockingIOError:
                fds = []
    except ChildError as exc:
        raise SpawnError(errno.ECHILD, f"could not start {argv[0]}: {exc}") from None
    finally:
        for fd in (net_fd, uts_fd, log_fd, null_fd):
            if fd is not None:
                os.close(fd)
    if failure is not None:
        for fd in fds:
            os.close(fd)
        raise SpawnError(*failure)
    return ProcId(pid, start), (fds[0] if fds else None)


def _detach(exe: str, args: list[str], envb: dict[bytes, bytes], net_fd: int, uts_fd: int | None, log_fd: int,
            null_fd: int, netns: str, pidfd_to: int) -> tuple[int, int, tuple[int, str] | None]:
    """In the intermediate child: a session of its own, then fork the container.

    Returns the container's pid and start time, and (errno, why) when it could
    not exec (None when it did, or was still on its way at EXEC_WAIT). A pidfd
    of the container goes back on the socket ``pidfd_to``.
    """
    os.setsid()
    report_r, report_w = os.pipe2(os.O_CLOEXEC)  # closes on a successful exec
    pid = os.fork()
    if pid == 0:  # the container
        try:
            enter_pod_here(net_fd, uts_fd, netns)
            os.chdir("/")
            os.dup2(null_fd, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, report_w)
            os.closerange(report_w + 1, 1 << 16)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            default_signals()
            os.execve(exe, args, envb)
        except BaseException as exc:  # noqa: BLE001 - report anything, then die
            code = getattr(exc, "errno", 0) or 0
            try:
                os.write(report_w, b"%d %s" % (code, str(exc).encode(errors="replace")[:200]))
            finally:
                os._exit(127)
    os.close(report_w)
    try:
        fd = os.pidfd_open(pid)  # our child, not reaped yet: this very process, exited or not
        try:
            with socket.socket(fileno=os.dup(pidfd_to)) as back:
                socket.send_fds(back, [b"p"], [fd])
        finally:
            os.close(fd)
    except OSError:
        pass  # no pidfd (a kernel before 5.3): nobody will know how it exited
    data = b""
    deadline = time.monotonic() + EXEC_WAIT
    try:
        while (left := deadline - time.monotonic()) > 0 and readable(report_r, left):
            chunk = os.read(report_r, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(report_r)
    start = start_time(pid) or 0  # our child, not reaped: /proc still has it, exited or not
    if not data:
        return pid, start, None
    code, _, why = data.decode(errors="replace").partition(" ")
    return pid, start, (int(code) if code.isdigit() else 0, why)
