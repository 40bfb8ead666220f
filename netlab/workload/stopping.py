"""Stopping one recorded container (lifecycle.py's records): only the task the record names, still in the pod.

A command container is a process of its own, sent SIGTERM (SIGKILL after a grace) once it is
proved to be the recorded task (its start time) in the pod's network namespace, or in the pod's pinned UTS
namespace where the network namespace went from under it. An echo container is a thread of the lab's echo
server, which drops it when asked; the echo containers of pods whose namespaces go (:func:`drop_echo`) are dropped
even from a slow server, which would otherwise be stopped with them, and every other pod's echo container with it.
"""

from __future__ import annotations

import os

from netlab.kernel import netns as nsmod
from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.workload import launch
from netlab.workload.tasks import in_pod_uts, is_echo_thread, proc_of, run_mark, task_in


def drop_echo(lab_name: str, ids: list[str]) -> list[str]:
    """Ask the lab's echo server to drop these echo containers ("pod/container") of pods whose namespaces go next,
    waiting out a server that is busy (another peer's request: :data:`launch.BUSY_WAIT`). One that is stopped
    (SIGSTOP) or still does not answer keeps a thread in those namespaces and goes with them (``kill.stop_namespaces``),
    and every other pod's echo container with it, which the run's start then starts again: said in a line."""
    server = launch.server_pid(lab_name) if ids else None
    if server is None:
        return []
    if proc.proc_state(server) == "T":
        how = "is stopped (SIGSTOP)"
    elif (answer := launch.ask(lab_name, {"op": "remove", "ids": ids}, len(ids), patience=launch.BUSY_WAIT)) is None:
        how = f"did not answer within {launch.CONTROL_TIMEOUT + launch.BUSY_WAIT:.0f} s"
    elif lingering := sorted(set(answer.errors) & set(ids)):
        # Its thread of the container never left the pod (a machine too busy to run it): the pod's namespaces
        # hold it, and with it the server, which the pod's stop finds there and stops (kill.stop_namespaces).
        how = f"kept the thread of {', '.join(lingering)} in the pod"
    else:
        return []
    pods = sorted({cid.split("/", 1)[0] for cid in ids})
    return [f"the lab's echo server (pid {server}) {how}: it goes with pod{'s' if len(pods) > 1 else ''} "
            f"{', '.join(pods)}, whose namespace{'s' if len(pods) > 1 else ''} it is in, and every pod's echo "
            "container is started again in a new one"]


def stop_container(lab_name: str, cid: str, crec: dict, netns: str, uts: str | None = None) -> None:
    """Stop one recorded container: only if it is still that task, in that network namespace, or
    (``uts``: the pod's pinned UTS namespace) in the pod's UTS namespace, wherever its network namespace
    is (gone from under it, or one it made itself).

    An echo container is dropped by the lab's echo server; should the server
    not answer, it is left to lifecycle.start, which then replaces the server.
    """
    p = proc_of(crec)
    if p is None:
        return
    if task_in(crec, netns) is not None:
        kind, want = "net", proc.ns_identity(nsmod.netns_path(netns))
    elif uts is not None and in_pod_uts(crec, uts):
        kind, want = "uts", proc.ns_identity(uts)
    else:
        return
    if is_echo_thread(crec):
        launch.ask_busy(lab_name, {"op": "remove", "ids": [cid]}, 1)  # a busy server's missed drop restarts them all
        return

    def still_ours(pid: int) -> bool:
        return proc.start_time(pid) == p.start and proc.ns_identity(f"/proc/{pid}/ns/{kind}") == want

    kill.terminate([p.pid], still_ours)
    _stop_members(crec, kind, want)  # "uts": those left in the pod's old network namespace, which they hold


def stop_rest(crec: dict, netns: str) -> None:
    """Stop what is left of a command container's run whose main process has ended (or is being stopped): every
    process of its session (its pid: kernel/spawning.py) still in the pod's network namespace, as the kernel
    kills every process of a container's PID namespace when its first one exits, so a server it started in the
    background does not hold the port its next run binds (QA q51 2). A process that left the session (setsid:
    a daemon) is left to ``down``. Only the run's own: each carries its id in its environment (tasks.run_mark),
    so a process of another session that came to have the same id, the run's pid handed out again (a daemon
    started with ``netlab exec``), is never stopped (QA q52 3); a record without an id has nothing stopped."""
    _stop_members(crec, "net", proc.ns_identity(nsmod.netns_path(netns)))


def _stop_members(crec: dict, kind: str, want: tuple[int, int] | None) -> None:
    """:func:`stop_rest` of the run's processes in the namespace of ``kind`` ("net", "uts") whose identity is
    ``want``."""
    p = proc_of(crec)
    mark = run_mark(crec)
    if p is None or is_echo_thread(crec) or mark is None or want is None:
        return

    def still_ours(pid: int) -> bool:
        return proc.of_run(pid, p, mark.encode()) and proc.ns_identity(f"/proc/{pid}/ns/{kind}") == want

    members = [pid for pid in proc.run_members(p, mark.encode()) if still_ours(pid)]
    if members:
        kill.terminate(members, still_ours)


def claim(crec: dict, netns: str) -> int | None:
    """A pidfd of the recorded command container, when it still runs as that task in the pod's network namespace
    (as :func:`stop_container` proves it), for the container that replaces it to stop (kernel/spawning.py
    ``replace``); None otherwise. The caller closes it, and stops the task with :func:`stop_container` should the
    new container not start."""
    p = proc_of(crec)
    if p is None or is_echo_thread(crec) or task_in(crec, netns) is None:
        return None
    want = proc.ns_identity(nsmod.netns_path(netns))
    try:
        fd = os.pidfd_open(p.pid)
    except OSError:
        return None
    if proc.start_time(p.pid) == p.start and proc.ns_identity(f"/proc/{p.pid}/ns/net") == want:
        return fd  # checked after the pidfd was opened: it names the process the check saw
    os.close(fd)
    return None
