"""The watcher's containers as processes: a pidfd each, their reaping, and how each exited.

``netlab up --watch`` (api/watch.py) holds a pidfd per container's process,
readable when it exits. The containers it starts itself are its children (it
is a child subreaper): ``waitid`` reaps them and gives their exit status.
Those a plain ``up`` started before it are init's children: their status
comes from the kernel's taskstats record of the exit (kernel/taskstats.py),
queued on our socket before the pidfd became readable. One that exited
before the watcher started is asked of the lab's echo server, which holds a
pidfd of every command container (workload/exits.py, Linux 6.15 and later);
else its status stays unknown. restartPolicy OnFailure reads the status
(lab/restart.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from netlab.kernel import events as kevents
from netlab.kernel import fdwait, libc, processes, taskstats
from netlab.model.lab import Lab
from netlab.realize.state import LabState, load_state
from netlab.workload import exits, lifecycle as workload, policy
from netlab.workload.records import records


PR_SET_CHILD_SUBREAPER = 36
Run = tuple[Any, Any]  # a container's run: its recorded task (pid or thread id, start time)


def become_subreaper() -> bool:
    """Orphaned descendants (the containers, once their launcher exits) become our children."""
    return bool(libc.handle().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def run_of(crec: dict[str, Any]) -> Run:
    """The run a container's record names: each start (or restart) records another task. A start that failed
    (no process: its program could not be started) is told from the one before by its count of restarts: each try
    is a run of its own, whose back-off counts from when it failed (QA q10 4: every failed try was taken for the
    first, so the back-off counted from that one and waited 10 s twice, and each wait was half the delay said)."""
    if crec.get("pid") is None and "error" in crec:
        return None, ("failed", crec.get("restarts"))
    return crec.get("pid"), crec.get("start")


@dataclass
class _Child:
    keys: list[str]  # pod/container: a command container, or every echo container its process serves
    pid: int
    fd: int
    start: Any = None  # the recorded start time of a command container's process (None: an echo server)
    runs: dict[str, Run] = field(default_factory=dict)  # pod/container -> the run its record named when tracked
    server: int | None = None  # an echo container's own thread (a thread pidfd): the echo server it is a thread of
    stopped: set[str] = field(default_factory=set)  # keys an apply stopped or replaced: their exit is not news


class Children:
    """The pidfds of a lab's containers, and how each run of a container exited.

    An exit belongs to the run that made it, as the kubelet keeps a container's ``state`` and its
    ``lastState`` apart: a container restarted meanwhile (by a plain ``up`` in another terminal, which the
    watcher does not see start) has a run of its own, whose exit is not known until it is read for it; it
    never takes the code of an earlier run."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, lab_name: str | None = None) -> None:
        self.clock = clock
        self.lab_name = lab_name  # whose echo server tells how an echo container it stopped serving ended
        self.by_fd: dict[int, _Child] = {}  # pidfd -> container(s)
        self.exit_codes: dict[str, tuple[Run, int | None]] = {}  # pod/container -> (run, its exit status)
        self.exit_times: dict[str, tuple[Run, float]] = {}  # pod/container -> (run, when its pidfd said it exited)
        self.exits: taskstats.ExitListener | None = None
        self._told: dict[int, int] = {}  # pid -> exit status, from taskstats, until its pidfd is read
        self._asked: set[tuple[str, int | None, int | None]] = set()  # (key, pid, start) asked of the server
        self._lab_told: dict[tuple[str, Any, Any], int] = {}  # (key, pid, start) -> exit status the server told

    def listen_for_exits(self) -> None:
        """From now on, the kernel's taskstats records say how containers that are not our children exit."""
        if self.exits is None:
            self.exits = taskstats.listen()

    def fds(self) -> list[int]:
        return list(self.by_fd)

    def track(self, lab: Lab, state: LabState) -> None:
        """A pidfd for every recorded container's process (new ones after each apply). Echo containers
        are threads of the lab's one echo server: each has a pidfd of its own thread (Linux 6.9's PIDFD_THREAD),
        readable when the server stops serving it (`netlab break endpoint-pod-down`, a `down` of its pod) and when
        the server dies (a signal that kills one of its threads, kill -9 TID, kills them all). On an older
        kernel the server's process is watched for all of them: a container it stops serving is then seen by
        the periodic check."""
        by_pid = {ch.pid: ch for ch in self.by_fd.values()}
        self._stopped_by_apply(lab, state)
        for pod, c, crec in workload.containers(lab, state):
            pid = (crec or {}).get("pid")
            if not isinstance(pid, int):
                continue
            why = workload.why_replace(crec, workload.container_argv(pod, c), pod.netns)
            # One that exited before this (at once, as `true` does) is still a zombie: its pidfd is readable
            # at once, and the loop reaps it now instead of at the next resync.
            if why is not None and not (why == policy.EXITED and _zombie(pid, (crec or {}).get("start"))):
                continue
            key = f"{pod.name}/{c.name}"
            process = processes.thread_group(pid) or pid
            if process != pid and self._track_thread(key, pid, crec or {}, process, by_pid):
                continue
            if process in by_pid:
                if key not in by_pid[process].keys:
                    by_pid[process].keys.append(key)
                by_pid[process].runs[key] = run_of(crec or {})
                continue
            fd = kevents.pidfd(process)
            if fd is not None:
                start = (crec or {}).get("start") if process == pid else None
                by_pid[process] = self.by_fd[fd] = _Child([key], process, fd, start, {key: run_of(crec or {})})

    def _stopped_by_apply(self, lab: Lab, state: LabState) -> None:
        """The tracked runs the lab no longer records (an apply stopped a container taken out of the topology, or
        replaced it): their exit, read next, is that apply's own doing, said by its line ("stopped container
        b/main (no longer in the topology)"), not a container that exited (QA q10 4)."""
        now = {f"{pod.name}/{c.name}": run_of(crec or {}) for pod, c, crec in workload.containers(lab, state)}
        for ch in self.by_fd.values():
            ch.stopped.update(key for key in ch.keys if now.get(key) != ch.runs.get(key, (ch.pid, ch.start)))

    def untrack(self, keys: list[str]) -> None:
        """No pidfd for these containers' processes (exited before the watcher, said by its first line: a zombie's
        pidfd, readable at once, would say it again as news)."""
        for fd, ch in list(self.by_fd.items()):
            if ch.start is not None and set(ch.keys) <= set(keys):
                os.close(self.by_fd.pop(fd).fd)

    def _track_thread(self, key: str, tid: int, crec: dict[str, Any], server: int, by_pid: dict[int, _Child]) -> bool:
        """An echo container's pidfd of its own thread ``tid`` of the echo server ``server`` (checked: that very
        thread, its start time the recorded one); False where the kernel has no thread pidfds."""
        if tid in by_pid:
            return True
        fd = kevents.thread_pidfd(tid)
        if fd is None:
            return False
        if processes.start_time(tid) != crec.get("start"):  # another thread by now: the one recorded is gone
            os.close(fd)
            return True
        by_pid[tid] = self.by_fd[fd] = _Child([key], tid, fd, crec.get("start"), {key: run_of(crec)}, server)
        return True

    def reap_untracked(self, key: str, crec: dict[str, Any]) -> None:
        """A container of ours that exited before it had a pidfd (a crash at start) is a zombie
        child: reap it (only that very process: its start time is checked), keeping its status."""
        pid, start = crec.get("pid"), crec.get("start")
        if not isinstance(pid, int) or any(ch.pid == pid for ch in self.by_fd.values()):
            return
        if not _zombie(pid, start):
            return
        try:
            res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            return  # not ours: init reaps it
        if res is not None:
            self.exit_codes[key] = run_of(crec), _exit_code(res)

    def reap_orphans(self) -> list[int]:
        """Reap the watcher's children that have exited and are none of the lab's containers: the orphans of its
        containers (a container's ``sleep 1000 &`` left running when it exited, killed with its run at the restart;
        an old dnsmasq's TCP children), which become ours as we are their subreaper. Called on every wake of the
        loop (every FILE_POLL at least), so none piles up while the watcher runs (QA reap57 1: one zombie per
        restart of a crash-looping container until the watcher ended). This is the containerd shim's part: the
        shim of a pod's containers is their child subreaper and reaps every child that exits (its reaper waits
        for any child on each SIGCHLD, and hands a container's own status to whom waits for it), so a container's
        orphans never linger under the kubelet either. Only zombies are reaped, each by its pid (``waitid``
        P_PID): never a tracked container's process (its status is read by its pidfd, :meth:`reaped`), the echo
        server of tracked echo containers, nor a container the lab's record names (one that exited before it
        was tracked: :meth:`reap_untracked` keeps its status). The loop's wake runs no program of its own then
        (each apply's subprocesses were waited for in its thread), so no ``subprocess`` status is taken either.
        The pids reaped."""
        kept = {ch.pid for ch in self.by_fd.values()} | {ch.server for ch in self.by_fd.values() if ch.server}
        dead = [kid for kid in processes.children(os.getpid()) if kid not in kept and processes.proc_state(kid) == "Z"]
        if not dead:
            return []
        state = load_state(self.lab_name) if self.lab_name is not None else None
        if state is not None:
            kept |= {crec["pid"] for pod in records(state)["pods"].values()
                     for crec in (pod.get("containers") or {}).values()
                     if isinstance(crec, dict) and isinstance(crec.get("pid"), int)}
        out = []
        for pid in dead:
            if pid in kept:
                continue
            try:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG) is not None:
                    out.append(pid)
            except ChildProcessError:  # reaped meanwhile, or not ours after all
                continue
        return out

    def reaped(self, fds: Iterable[int]) -> list[str]:
        """The containers whose pidfd among ``fds`` says they exited, their status kept; "pod/container"."""
        out = []
        self.read_exits()  # before any is popped: the records of every one of them are kept
        for fd in fds:
            ch = self.by_fd.pop(fd, None)
            if ch is None:
                continue
            told = self._told.pop(ch.pid, None)
            code: int | None = None
            if ch.server is not None:  # an echo container's thread
                code = self._thread_exit(ch, told)
            else:
                try:
                    res = os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
                    if res is not None:
                        code = _exit_code(res)
                except ChildProcessError:
                    code = told  # not our child (started before the watcher): its status went to init
            os.close(fd)
            now = self.clock()
            for key in ch.keys:
                run = ch.runs.get(key, (ch.pid, ch.start))
                # A zombie that init had not reaped when the watcher began: the lab's server told its status.
                self.exit_codes[key] = run, code if code is not None else self._lab_told.get((key, ch.pid, ch.start))
                self.exit_times[key] = run, now  # the kubelet's FinishedAt: its back-off counts from it
            out += [key for key in ch.keys if key not in ch.stopped]
        return out

    def _thread_exit(self, ch: _Child, told: int | None) -> int | None:
        """How an echo container's thread ended: as the lab's echo server says a container it stopped serving did
        (SIGTERM, 143); its thread's own record in taskstats once the server itself is gone (killed with it)."""
        key = ch.keys[0]
        if self.lab_name is not None:
            code = exits.exit_codes(self.lab_name, {key: {"pid": ch.pid, "start": ch.start}}).get(key)
            if code is not None:
                return code
        return told if not processes.running(ch.server or 0) else None

    def reaped_now(self) -> list[str]:
        """:meth:`reaped` of the pidfds readable at this moment (no wait)."""
        return self.reaped(fdwait.ready(self.fds(), 0))  # a 500-pod lab's pidfds are past descriptor 1023

    def exit_code(self, key: str, crec: dict[str, Any]) -> int | None:
        """How the run ``crec`` names exited, as far as the watcher knows (None: not known, or not exited)."""
        run, code = self.exit_codes.get(key, (None, None))
        return code if run == run_of(crec) else None

    def exited_at(self, key: str, crec: dict[str, Any]) -> float:
        """When the run ``crec`` names exited, on the watcher's clock: when its pidfd said so; for a run the watcher
        did not see exit (before it started, or unwatched), when it was first asked, kept for that run."""
        run, at = self.exit_times.get(key, (None, 0.0))
        if run != run_of(crec):
            at = self.clock()
            self.exit_times[key] = run_of(crec), at
        return at

    def ask_lab(self, lab_name: str, key: str, crec: dict[str, Any]) -> int | None:
        """How a command container that exited unseen by the watcher did (before it started, or a run a plain
        ``up`` started meanwhile), from the lab's echo server (asked once per run of it); kept, and returned,
        when the server knew."""
        run = (key, *run_of(crec))
        if run not in self._asked:
            code = exits.exit_codes(lab_name, {key: crec}).get(key)
            if code is not None:
                self.exit_codes[key] = run_of(crec), code
                self._lab_told[run] = code
            # Asked again while it is a zombie that init has not reaped yet (the kernel keeps the status then).
            pid = run[1]
            if code is not None or not isinstance(pid, int) or processes.start_time(pid) != run[2]:
                self._asked.add(run)
        return self.exit_code(key, crec)

    def read_exits(self) -> None:
        """Read the exit records queued now, keeping those of the containers watched (the rest of the
        machine's are dropped)."""
        if self.exits is not None:
            self._told.update(self.exits.read(ch.pid for ch in self.by_fd.values()))

    def code(self, key: str, crec: dict[str, Any] | None = None) -> str:
        """How the container's run ``crec`` exited (without it: the run last reaped), as the watcher's lines
        say it; "" when the watcher has seen no exit of that run."""
        if key not in self.exit_codes:
            return ""
        run, code = self.exit_codes[key]
        if crec is not None and run != run_of(crec):
            return ""  # an earlier run's exit: not this one's
        return (" (exit status unknown: not started by this watcher, and no record of it in taskstats or the "
                "lab's echo server)" if code is None
                else f" (exit {code})")

    def close(self) -> None:
        if self.exits is not None:
            self.exits.close()
            self.exits = None
        for fd in list(self.by_fd):
            os.close(fd)
        self.by_fd.clear()


def _zombie(pid: int, start: Any) -> bool:
    """That very process has exited and waits to be reaped."""
    return processes.proc_state(pid) == "Z" and processes.start_time(pid) == start


def _exit_code(res: os.waitid_result) -> int:
    """A reaped child's exit code, or 128 + the signal that killed it (as a shell says it)."""
    return res.si_status if res.si_code == os.CLD_EXITED else 128 + res.si_status


def reap_exited_children() -> None:
    """The watcher's children that have exited (containers it restarted, as their subreaper) are reaped
    before it goes, not left as zombies for init; those still running run on, the lab's, as after a plain
    up."""
    while True:
        try:
            if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG) is None:
                return
        except ChildProcessError:  # no child at all
            return
