"""Processes of a lab, found by namespace identity: what /proc says of a process, and which run in a lab.

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
and stopping it stops its process (kernel/kill.py stops them; kernel/spawning.py
starts containers).

This module is imported by the echo launcher too (a fresh interpreter that
forks hundreds of servers), so it stays light: no pyroute2.
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass
from typing import Iterable

from netlab.kernel import caps, netns as nsmod


def set_comm(name: str) -> None:
    """The process name ps/top show (15 bytes), e.g. "echo fedora-1"."""
    nsmod.name_thread(name.encode())


@dataclass(frozen=True)
class ProcId:
    """One process, for good: pid plus its start time (pids are recycled)."""

    pid: int
    start: int

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start}


class CannotTell(PermissionError):
    """Root may not read a process's namespace links or environment (EACCES): it lacks CAP_SYS_PTRACE and the
    process is not dumpable (dnsmasq, once it drops its capabilities). Whether the process is in a lab cannot be
    told: never "gone" (`status` said kube-dns exited, a repair `up` started a second dnsmasq, `down` left it)."""

    def __init__(self, path: str):
        super().__init__(errno.EACCES, "cannot tell whether this process is one of the lab's: reading it needs "
                         "CAP_SYS_PTRACE", path)


def ns_identity(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a namespace file or /proc/<pid>/ns/<kind> link; None if gone (ENOENT, ESRCH).

    Raises CannotTell when it may not be read (EACCES): a process that is there, not one that is gone."""
    try:
        st = os.stat(path)
    except PermissionError as exc:
        if exc.errno == errno.EACCES:
            raise CannotTell(path) from None
        return None
    except OSError:  # gone
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


def session(pid: int) -> int | None:
    """Field 6 of /proc/<pid>/stat: the session id (a container's is its own pid: kernel/spawning.py)."""
    rest = _stat_fields(pid)
    return int(rest[3]) if rest and len(rest) > 3 else None


def session_members(leader: ProcId) -> list[int]:
    """The processes of the session ``leader`` began (its pid, start time), but for the leader itself: none when
    its pid is another process's now. While a session has a member its id is never handed out again (the kernel
    keeps the pid in use), so with the leader gone every process of that session id is of its session."""
    now = start_time(leader.pid)
    if now is not None and now != leader.start:
        return []
    return [pid for pid in _pids() if pid != leader.pid and session(pid) == leader.pid]


def run_members(leader: ProcId, mark: bytes) -> list[int]:
    """The processes left of one container's run: of the session its first process ``leader`` began
    (:func:`session_members`) and carrying ``mark``, the run's own environment entry (``NAME=value``), which
    every process it forks inherits and nothing else has. A session id alone does not name the run: once the
    leader is gone and its pid handed out again, a new session may have that id (a daemon whose session leader
    exited, started by ``netlab exec`` in the pod; QA q52 3). No mark: none."""
    return [pid for pid in session_members(leader) if of_run(pid, leader, mark)] if mark else []


def of_run(pid: int, leader: ProcId, mark: bytes) -> bool:
    """Process ``pid`` is of the run ``leader`` began (:func:`run_members`): its session, started no earlier
    than the leader (field 22), its environment holding ``mark``. A zombie has no environment: not counted."""
    start = start_time(pid)
    return bool(mark) and start is not None and start >= leader.start and session(pid) == leader.pid \
        and environ_has(pid, mark)


RUN_KILL_ROUNDS = 20  # scans and kills of an exited run's members in one go (echoserver.end_exited)


def kill_run(leader: ProcId, mark: bytes, rounds: int = RUN_KILL_ROUNDS) -> bool:
    """SIGKILL every process of the run ``leader`` began (:func:`run_members`), scanning again after each
    kill until a scan finds none (True) or ``rounds`` are done (False: some may be left)."""
    for _ in range(rounds):
        members = run_members(leader, mark)
        if not members:
            return True
        for member in members:
            try:
                fd = os.pidfd_open(member)
            except OSError:
                continue
            try:
                if of_run(member, leader, mark):  # checked with the pidfd open: that very process
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(fd)
    return False


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


def parent(pid: int) -> int | None:
    """Field 4 of /proc/<pid>/stat (the parent's pid), None if the process is gone."""
    rest = _stat_fields(pid)
    return int(rest[1]) if rest and len(rest) > 1 else None


def environ_has(pid: int, entry: bytes) -> bool:
    """``entry`` (``NAME=value``) is one of the process's environment entries (:func:`environ_entries`)."""
    return entry in environ_entries(pid)


def environ_entries(pid: int) -> list[bytes]:
    """The process's environment entries (``NAME=value``), as it was given at its exec (/proc/<pid>/environ: root
    reads any process's; a zombie's or a kernel thread's is empty, as is a process gone)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().split(b"\0")
    except PermissionError as exc:  # there, but not ours to read (:class:`CannotTell`): not "none of them"
        if exc.errno == errno.EACCES:
            raise CannotTell(f"/proc/{pid}/environ") from None
        return []
    except OSError:
        return []


def environ_names(pid: int, name: bytes) -> bool:
    """The process's environment, as given at its exec, has an entry named ``name`` (whatever its value)."""
    return any(entry.startswith(name + b"=") for entry in environ_entries(pid))


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tasks(pid: int) -> list[str]:
    """The thread ids of a process (its own id first when it is there)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    return sorted(tids, key=lambda t: t != str(pid))


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (each thread's, from /proc/PID/task/TID/children: an orphan reparented to a
    subreaper is the child of one of its threads); falls back to every process's parent where the kernel has no
    such file (CONFIG_PROC_CHILDREN off)."""
    out: list[int] = []
    for tid in _tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out += [int(x) for x in fh.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # that thread is gone
            return [kid for kid in _pids() if _parent(kid) == pid]
        except (ProcessLookupError, ValueError):
            continue
    return out


def _parent(pid: int) -> int | None:
    rest = _stat_fields(pid)
    return int(rest[1]) if rest else None


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
            where = namespace_of(pid, wanted)
            if where is not None:
                out[pid] = where
    return out


def namespace_of(pid: int, wanted: dict[tuple[int, int], str]) -> str | None:
    """Which of the ``wanted`` namespaces (net or UTS) a thread of process ``pid`` is in, if any. A thread of
    another netlab command passing through one (netns.entered: a ``status`` reader, named so) is not the lab's:
    it leaves on its own, and its command says what it found."""
    for tid in _tasks(pid):
        for kind in ("net", "uts"):
            try:
                ident = ns_identity(f"/proc/{pid}/task/{tid}/ns/{kind}")
            except CannotTell:
                if caps.missing(caps.PROCESSES):
                    raise  # it may be the lab's kube-dns: not read as "not in it"
                return None  # root with CAP_SYS_PTRACE: a process an LSM hides (a sandbox's init), none of netlab's
            if ident in wanted and not _visiting(pid, tid):
                return wanted[ident]
    return None


def _visiting(pid: int, tid: str) -> bool:
    """Thread ``tid`` of process ``pid`` is in a namespace through netns.entered() now (named VISITOR)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/comm", "rb") as fh:
            return fh.read().rstrip(b"\n") == nsmod.VISITOR
    except OSError:
        return False


def comm(pid: int) -> str | None:
    """The process's name (/proc/<pid>/comm, 15 bytes at most), None if it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return None
