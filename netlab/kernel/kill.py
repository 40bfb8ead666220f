"""Stopping processes for good: SIGTERM, then SIGKILL, through pidfds, every wait bounded.

Signals go through a pidfd (``pidfd_open``), which names one process for good,
and exits are awaited by polling the pidfds (a pidfd becomes readable when its
process exits), so every wait is bounded and no pid race can hit a stranger.
A process a scan of /proc found is named by its id and start time (field 22 of
``/proc/<id>/stat``, :class:`ProcId`), checked once its pidfd is held: an id
handed to another process since is never taken for the one found. Where the
kernel has no ``pidfd_open`` (before Linux 5.3) the same check is made before
each signal, sent by pid; exits are then awaited by reading /proc.
Which processes are a lab's is kernel/processes.py's: by namespace identity.
"""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

from netlab.kernel import netns as nsmod
from netlab.kernel import command_words, testhooks
from netlab.kernel.processes import ProcId, cmdline, comm, find_in_namespaces, namespace_of, ns_identity, \
    running, start_time, thread_group


def send(pidfd: int, sig: int) -> bool:
    """``sig`` to the process of ``pidfd``; a SIGTERM followed by SIGCONT: a stopped process keeps SIGTERM pending
    until continued, so it exits now rather than at SIGKILL after the grace period. False: it is gone."""
    return _deliver(lambda s: signal.pidfd_send_signal(pidfd, s), sig)


def _deliver(to: Callable[[int], None], sig: int) -> bool:
    """:func:`send`'s signals, through ``to`` (a pidfd's, or a pid's: :func:`_send_pid`)."""
    try:
        to(sig)
        if sig == signal.SIGTERM:
            to(signal.SIGCONT)
    except ProcessLookupError:
        return False
    return True


NO_PIDFD = -1  # _pidfd's word for "no pidfds here": the process is named by its id and start time alone


def _pidfd(pid: int) -> int | None:
    """A pidfd of process ``pid``; None when it is gone; :data:`NO_PIDFD` when this kernel (or Python) has no
    ``pidfd_open`` (before Linux 5.3): then it is signalled by pid (:func:`_send_pid`)."""
    try:
        if not hasattr(os, "pidfd_open"):
            return NO_PIDFD if start_time(pid) is not None else None
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.EINVAL):
            return None
        if exc.errno == errno.ENOSYS:
            return NO_PIDFD if start_time(pid) is not None else None
        raise


P = TypeVar("P", int, ProcId)


def terminate(pids: Iterable[P], still_ours: Callable[[int], bool], grace: float = 3.0,
              kill_wait: float = 2.0) -> list[P]:
    """SIGTERM (and SIGCONT), wait up to ``grace`` s, SIGKILL the rest, wait up to ``kill_wait`` s.

    A thread id stands for its whole process (an echo container is a thread
    of the lab's echo server, which this stops). A :class:`ProcId` names the
    very task a scan found: it is signalled only while its id has that start
    time (a recycled id is another process: never signalled for it).
    ``still_ours(pid)`` is called with the id given, after the process's
    pidfd is opened (so it names the same process the check sees), and
    decides whether to signal it at all. Returns those given still running
    at the end (should be none).
    """
    return _terminate(pids, still_ours, grace, kill_wait)[1]


def _terminate(pids: Iterable[P], still_ours: Callable[[int], bool], grace: float,
               kill_wait: float) -> tuple[list[P], list[P]]:
    """:func:`terminate`'s work: (those given that were signalled, those of them still running at the end)."""
    held: dict[int, tuple[int, int | None]] = {}  # leader -> (its pidfd or NO_PIDFD, its start time)
    given: dict[int, P] = {}
    try:
        for item in pids:
            pid = item.pid if isinstance(item, ProcId) else item
            leader = thread_group(pid) or pid
            if leader in held:
                continue
            fd = _pidfd(leader)
            if fd is None:
                continue
            held[leader] = (fd, start_time(leader))  # closed below even when still_ours raises
            # Read with the pidfd held: until it says its process exited, /proc/<id> is that process.
            if (isinstance(item, ProcId) and start_time(pid) != item.start) or not still_ours(pid) \
                    or (leader != pid and not os.path.exists(f"/proc/{leader}/task/{pid}")) or _exited(fd):
                _close(held.pop(leader)[0])
                continue
            given[leader] = item
        signalled: list[P] = []  # those a signal reached: one gone before its SIGTERM was not stopped by it
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
            for leader, (fd, start) in list(held.items()):
                if not (send(fd, sig) if fd != NO_PIDFD else _send_pid(leader, start, sig, still_ours)):
                    _close(held.pop(leader)[0])  # gone: nothing to wait for
                elif sig == signal.SIGTERM:
                    signalled.append(given[leader])
            _wait_exit(held, wait)
            if not held:
                break
        return signalled, [given[leader] for leader in sorted(held)]
    finally:
        for fd, _start in held.values():
            _close(fd)


def _close(fd: int) -> None:
    if fd != NO_PIDFD:
        os.close(fd)


def _exited(fd: int) -> bool:
    """The process of pidfd ``fd`` has exited (its pidfd is readable): its id may be another's by now."""
    if fd == NO_PIDFD:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _send_pid(pid: int, start: int | None, sig: int, still_ours: Callable[[int], bool]) -> bool:
    """Without pidfds: ``sig`` by pid to the process whose start time was ``start``, checked just before (it
    runs, it is still ours); False once it is gone or its id is another's. Only a pidfd closes the window
    between that check and the signal (doctor says whether the kernel has them)."""
    if start is None or start_time(pid) != start or not running(pid) or not still_ours(pid):
        return False
    return _deliver(lambda s: os.kill(pid, s), sig)


BY_PID_POLL = 0.02  # s between reads of /proc while a process signalled by pid is awaited (no pidfds)


def _wait_exit(held: dict[int, tuple[int, int | None]], timeout: float) -> None:
    """Drop from ``held`` (closing them) every process that exited within ``timeout``: a pidfd becomes readable
    when its process exits; one signalled by pid is gone once its id has no running process of its start time."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    by_fd = {fd: leader for leader, (fd, _start) in held.items() if fd != NO_PIDFD}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    while held:
        for leader, (fd, start) in list(held.items()):
            if fd == NO_PIDFD and (start_time(leader) != start or not running(leader)):
                held.pop(leader)
        left = deadline - time.monotonic()
        if not held or left <= 0:
            break
        by_pid = len(held) > len(by_fd)
        for fd, _ev in poller.poll((min(left, BY_PID_POLL) if by_pid else left) * 1000):
            leader = by_fd.pop(fd)
            poller.unregister(fd)
            os.close(held.pop(leader)[0])


KILL_ROUNDS = 3  # scans of /proc a stop makes: a process may fork, or another enter, between a scan and its signal


@dataclass(frozen=True)
class Found:
    """A process a stop found in a namespace it stopped: the very process (:class:`ProcId`), where (the
    namespace's name, or the UTS file it was found through), and its command line as it was then."""

    proc: ProcId
    where: str
    command: str


def stop_namespaces(netns_names: Sequence[str], uts_files: Sequence[str] = (), grace: float = 3.0,
                    ours: Callable[[ProcId], bool] | None = None, others: list[Found] | None = None) -> list[str]:
    """Stop every process with a thread in these namespaces; returns descriptions of survivors (none expected).

    A process can come into the namespaces between a scan of /proc and the
    signals sent to what it found (a container's shell forks a child, a user
    enters with nsenter): it would keep the network namespace alive, nameless,
    with nobody left to stop it. So the scan is made again after each stop,
    until one finds nothing new, at most :data:`KILL_ROUNDS` times; what a last
    scan still finds is not signalled (it may be a fork loop) but said, as is
    what outlived SIGKILL. Processes are told apart by id and start time: one
    that got the id of a process stopped in an earlier round is new, found and
    stopped as such; one found is signalled only while it is that process and
    in these namespaces.

    ``ours``: whether a process found is the lab's own (a container's), asked
    as it is found; each other one this stop signalled and saw exit is added
    to ``others`` (the user's ``netlab exec`` or ``nsenter``: said by the
    caller, who would not know it otherwise).
    """
    wanted: dict[tuple[int, int], str] = {}
    seen: dict[ProcId, Found] = {}
    left: list[ProcId] = []

    def still_ours(pid: int) -> bool:
        return namespace_of(pid, wanted) is not None

    for round_ in range(KILL_ROUNDS + 1):
        found = [p for p in _scan(netns_names, uts_files, seen) if p.proc not in seen]
        if not found:
            break
        if not wanted:
            wanted.update({ident: n for n in netns_names if (ident := ns_identity(nsmod.netns_path(n))) is not None})
            wanted.update({ident: p for p in uts_files if (ident := ns_identity(p)) is not None})
        seen.update({f.proc: f for f in found})
        strangers = {f.proc for f in found if ours is not None and others is not None and not ours(f.proc)}
        if round_ == KILL_ROUNDS:  # came after the last round's signals
            left += [f.proc for f in found]
            break
        testhooks.fault_point("processes-found")
        signalled, still = _terminate([f.proc for f in found], still_ours, grace, 2.0)
        left += still
        if others is not None:
            others += [seen[p] for p in signalled if p in strangers and p not in still]
    return [f"pid {p.pid} ({seen[p].command[:60]}) in {seen[p].where}" for p in sorted(left, key=lambda p: p.pid)
            if start_time(p.pid) == p.start and still_ours(p.pid)]


def _scan(netns_names: Sequence[str], uts_files: Sequence[str], seen: dict[ProcId, Found]) -> list[Found]:
    """The processes in these namespaces now, each named by its id and start time, read as it is found (with its
    command line, unless an earlier round found it already): one gone since is not there; one whose id another
    took in between is that other one, which the stop checks is in the namespaces before it signals it."""
    out = []
    for pid, where in sorted(find_in_namespaces(netns_names, uts_files).items()):
        start = start_time(pid)
        if start is not None:
            p = ProcId(pid, start)
            out.append(seen.get(p) or Found(p, where, command_of(pid)))
    return out


def command_of(pid: int) -> str:
    """A process's command line as ps shows it, on one line (a newline or a terminal's escape in an argument is
    said as Python writes it: ``sh -c 'sleep 1\\ntrue'``); a kernel thread's or a zombie's (none) is its name in
    brackets."""
    said = " ".join(cmdline(pid)) or f"[{comm(pid) or '?'}]"
    return said if said.isprintable() else said.encode("unicode_escape").decode("ascii")


def stopped_words(containers: Sequence[str], left: int) -> str:
    """What a removed pod's stop did of its ``containers``: ``containers main, web stopped``, or, when the stop
    named ``left`` processes it left in the pod's namespaces (:func:`stop_namespaces`, a warning each), ``...
    not all stopped: 1 process left in the pod, named in a warning``."""
    said = f"container{'s' if len(containers) > 1 else ''} {', '.join(containers)}"
    if left:
        return f"{said} not all stopped: {left} process{'es' if left > 1 else ''} left in the pod, named in a warning"
    return f"{said} stopped"


@dataclass(frozen=True)
class Stopped:
    """A process that was not the lab's, stopped with a namespace of it (:func:`stop_namespaces`' ``others``, a
    user's ``netlab exec`` or ``nsenter``): the very process, the name of the network namespace it was in (one
    found through a pod's UTS pin: that pod's), and its command line as found (:func:`command_of`: on one line),
    its first :data:`COMMAND_MOST` characters. ``up`` and ``down`` say them with what they removed
    (:func:`others_words`, ``-o json``'s ``stopped_processes``); a rollback, a line each (:func:`other_line`)."""

    proc: ProcId
    netns: str
    command: str

    @classmethod
    def of(cls, found: Found, netns: str) -> Stopped:
        return cls(found.proc, netns, found.command[:COMMAND_MOST])


COMMAND_MOST = 200  # the characters of a stopped process's command line kept (Stopped.command)


def other_line(stopped: Stopped) -> str:
    """A process not the lab's that a stop stopped, as a line of a rollback's (which says what its stops said):
    ``stopped a process of yours in lab-b: 4242 (sleep 1000)``."""
    if command_words.netlab_words(stopped.command) is not None:
        return (f"stopped another netlab command in {stopped.netns}: {stopped.proc.pid} "
                f"({command_words.said(stopped.command, COMMAND_MOST)})")
    return f"stopped a process of yours in {stopped.netns}: {stopped.proc.pid} ({stopped.command})"


def others_words(procs: Sequence[tuple[int, str, str]], place: str, most: int = 5) -> str:
    """The processes not the lab's that a removal stopped, each (pid, command, its namespace's name or ""), in
    ``place`` (``the pod``): ``also stopped 2 processes of yours in the pod: 4242 sleep 1000, 4250 bash``; the
    first ``most``, then how many more (``-o json`` lists them all: stopped_processes)."""
    ours = [command_words.netlab_words(command) is not None for _, command, _ in procs]
    mixed = any(ours) and not all(ours)  # each netlab command named so; else the count's words say it
    named = ", ".join(f"{pid} {command_words.said(command)}" + " (a netlab command)" * (mixed and mine)
                      + (f" in {netns}" if netns else "") for (pid, command, netns), mine in zip(procs[:most], ours))
    more = f" and {len(procs) - most} more" if len(procs) > most else ""
    whose = (f"netlab command{'s' if len(procs) > 1 else ''}" if ours and all(ours)
             else f"process{'es' if len(procs) > 1 else ''}{'' if mixed else ' of yours'}")
    return f"also stopped {len(procs)} {whose} in {place}: {named}{more}"


def is_survivor(line: str) -> bool:
    """``line`` is one of :func:`stop_namespaces`'s: a process left in the namespaces it stopped."""
    return SURVIVOR.match(line) is not None


SURVIVOR = re.compile(r"pid \d+ \(.*\) in ")
