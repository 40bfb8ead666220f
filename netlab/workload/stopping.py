"""Stopping one recorded container (lifecycle.py's records): only the task the record names, still in the pod.

A command container is a process of its own, sent SIGTERM (SIGKILL after a grace) once it is
proved to be the recorded task (its start time) in the pod's network namespace, or in the pod's pinned UTS
namespace where the network namespace went from under it. An echo container is a thread of the lab's echo
server, which drops it when asked.
"""

from __future__ import annotations

from netlab.kernel import netns as nsmod
from netlab.kernel import kill
from netlab.kernel import processes as proc
from netlab.workload import launch
from netlab.workload.tasks import in_pod_uts, is_echo_thread, proc_of, task_in


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
        launch.ask(lab_name, {"op": "remove", "ids": [cid]}, 1)
        return

    def still_ours(pid: int) -> bool:
        return proc.start_time(pid) == p.start and proc.ns_identity(f"/proc/{pid}/ns/{kind}") == want

    kill.terminate([p.pid], still_ours)
