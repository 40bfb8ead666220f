"""Stopping processes for good: SIGTERM, then SIGKILL, through pidfds, every wait bounded.

Signals go through a pidfd (``pidfd_open``), which names one process for good,
and exits are awaited by polling the pidfds (a pidfd becomes readable when its
process exits), so every wait is bounded and no pid race can hit a stranger.
Which processes are a lab's is kernel/processes.py's: by namespace identity.
"""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import time
from typing import Callable, Iterable, Sequence

from netlab.kernel import netns as nsmod
from netlab.kernel import testhooks
from netlab.kernel.processes import cmdline, find_in_namespaces, namespace_of, ns_identity, thread_group


def send(pidfd: int, sig: int) -> bool:
    """``sig`` to the process of ``pidfd``; a SIGTERM followed by SIGCONT: a stopped process keeps SIGTERM pending
    until continued, so it exits now rather than at SIGKILL after the grace period. False: it is gone."""
    try:
        signal.pidfd_send_signal(pidfd, sig)
        if sig == signal.SIGTERM:
            signal.pidfd_send_signal(pidfd, signal.SIGCONT)
    except ProcessLookupError:
        return False
    return True


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
            fds[leader] = fd  # held from its open on: closed below even when still_ours raises
            if not still_ours(pid) or (leader != pid and not os.path.exists(f"/proc/{leader}/task/{pid}")):
                os.close(fds.pop(leader))
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
            for fd in fds.values():
                send(fd, sig)
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


KILL_ROUNDS = 3  # scans of /proc a stop makes: a process may fork, or another enter, between a scan and its signal


def stop_namespaces(netns_names: Sequence[str], uts_files: Sequence[str] = (), grace: float = 3.0) -> list[str]:
    """Stop every process with a thread in these namespaces; returns descriptions of survivors (none expected).

    A process can come into the namespaces between a scan of /proc and the
    signals sent to what it found (a container's shell forks a child, a user
    enters with nsenter): it would keep the network namespace alive, nameless,
    with nobody left to stop it. So the scan is made again after each stop,
    until one finds nothing new, at most :data:`KILL_ROUNDS` times; what a last
    scan still finds is not signalled (it may be a fork loop) but said, as is
    what outlived SIGKILL.
    """
    wanted: dict[tuple[int, int], str] = {}
    seen: dict[int, str] = {}
    left: list[int] = []

    def still_ours(pid: int) -> bool:
        return namespace_of(pid, wanted) is not None

    for round_ in range(KILL_ROUNDS + 1):
        found = {pid: where for pid, where in find_in_namespaces(netns_names, uts_files).items() if pid not in seen}
        if not found:
            break
        if not wanted:
            wanted.update({ident: n for n in netns_names if (ident := ns_identity(nsmod.netns_path(n))) is not None})
            wanted.update({ident: p for p in uts_files if (ident := ns_identity(p)) is not None})
        seen.update(found)
        if round_ == KILL_ROUNDS:  # came after the last round's signals
            left += sorted(found)
            break
        testhooks.fault_point("processes-found")
        left += terminate(found, still_ours, grace=grace)
    return [f"pid {pid} ({' '.join(cmdline(pid))[:60]}) in {seen.get(pid, '?')}" for pid in left if still_ours(pid)]


def stopped_words(containers: Sequence[str], left: int) -> str:
    """What a removed pod's stop did of its ``containers``: ``containers main, web stopped``, or, when the stop
    named ``left`` processes it left in the pod's namespaces (:func:`stop_namespaces`, a warning each), ``...
    not all stopped: 1 process left in the pod, named in a warning``."""
    said = f"container{'s' if len(containers) > 1 else ''} {', '.join(containers)}"
    if left:
        return f"{said} not all stopped: {left} process{'es' if left > 1 else ''} left in the pod, named in a warning"
    return f"{said} stopped"


def is_survivor(line: str) -> bool:
    """``line`` is one of :func:`stop_namespaces`'s: a process left in the namespaces it stopped."""
    return SURVIVOR.match(line) is not None


SURVIVOR = re.compile(r"pid \d+ \(.*\) in ")
