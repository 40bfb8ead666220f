"""How command containers exited: the lab's echo server holds a pidfd of each, and the kernel keeps the status.

A command container is re-parented to init as soon as ``up`` has started it
(kernel/spawning.py), so no netlab process is its parent to ``wait`` for it.
Since Linux 6.15 whoever holds a pidfd of a process reads its exit status
once init has reaped it (kernel/pidfd.py); before that, while it is a zombie,
the holder reads it from /proc (kernel/processes.zombie_status), so a
container's status is known from the moment it dies, whenever init gets to
it. The lab's echo server lives as long as the lab: ``up`` hands it a pidfd
of every command container it starts (and of those still running, for a
server started anew), and ``get pods``, ``status`` and ``up --watch`` ask
it how the ones that are gone exited. That is what the kubelet reports from
the container runtime: exit code 0 is ``Completed``, anything else
``Error``; a signal is 128 + its number (137: SIGKILL). On an older kernel
nothing is held and the status stays unknown, as before (then also while
the container is a zombie: a status told only until init reaps it would
change under the user).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping

from netlab.kernel import pidfd, taskstats
from netlab.kernel import processes as proc
from netlab.workload import launch, policy
from netlab.workload.tasks import alive, proc_of, run_mark

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container


def hold_commands(lab: Lab, pods: dict, spawned: list[tuple[str, proc.ProcId, int]]) -> None:
    """Have the lab's echo server keep a pidfd of every command container: those just started
    (``spawned``: id, process, pidfd) and those still running. A lab whose pods all run commands gets a
    server for this alone; a kernel that keeps no exit status gets nothing held."""
    if not (spawned or any(c.command for pod in lab.pods for c in pod.containers)) \
            or not pidfd.exit_info_supported():
        return
    items = list(spawned)
    opened: list[int] = []
    new = {cid for cid, _p, _fd in spawned}
    try:
        for pod in lab.pods:
            records = (pods.get(pod.name) or {}).get("containers", {})
            for c in pod.containers:
                p = proc_of(records.get(c.name) or {}) if c.command else None
                if p is None or f"{pod.name}/{c.name}" in new:
                    continue
                try:
                    fd = os.pidfd_open(p.pid)
                except OSError:
                    continue  # gone: how it exited is known only if a server held it before
                opened.append(fd)
                if proc.start_time(p.pid) == p.start:  # checked once the pidfd is open: that very process
                    items.append((f"{pod.name}/{c.name}", p, fd))
        if not items:
            return
        server = launch.server_pid(lab.name)
        if server is None:
            launcher = launch.launch_echo([], launch.control_path(lab.name, create=True), launch.server_log(lab.name))
            launch.read_launch(launcher, 0)
        elif proc.proc_state(server) == "T":
            return  # stopped by SIGSTOP: it would not answer (the next up replaces it with its containers)
        marks = {f"{pod.name}/{c.name}": mark for pod in lab.pods for c in pod.containers
                 if (mark := run_mark(((pods.get(pod.name) or {}).get("containers") or {}).get(c.name) or {}))}
        launch.hold(lab.name, items, marks)
    except OSError:
        pass  # no server could be started: how these exit stays unknown, and the containers run all the same
    finally:
        for fd in opened:
            os.close(fd)


def exit_codes(lab_name: str, records: Mapping[str, dict]) -> dict[str, int]:
    """The exit code of each container of ``records`` (id -> its record) that has exited, where the lab's
    server held its very process (same pid and start time as recorded)."""
    told = launch.exits(lab_name, sorted(records)) if records else {}
    out = {}
    for cid, (pid, start, status) in told.items():
        p = proc_of(records.get(cid) or {})
        if p is not None and (p.pid, p.start) == (pid, start):
            out[cid] = taskstats.exit_status(status)  # a wait status, as the kernel's exit records hold
    return out


def policy_hold(lab_name: str) -> Callable[[PodInfo, Container, dict, str], str | None]:
    """Plain ``up``'s hold (workload.lifecycle.start): the pod's restartPolicy, with no back-off (policy.py).
    A container that could not start at all is tried again whatever the policy."""
    def hold(pod: PodInfo, c: Container, crec: dict[str, Any], why: str) -> str | None:
        if why == policy.FAILED_START:
            return None
        cid = f"{pod.name}/{c.name}"
        return policy.held(pod.spec.restart_policy, why, alive(crec),
                           lambda: exit_codes(lab_name, {cid: crec}).get(cid) if c.command else None)
    return hold
