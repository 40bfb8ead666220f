"""A container's recorded task, as the kernel sees it now: alive, where, and why it must be replaced.

The lab's state records each container's task by pid and start time
(lifecycle.py), so a recycled pid is never taken for it. A command
container is a process of its own; an echo container is a thread of the
lab's echo server. Both run in two namespaces of the pod: its network
namespace (``/run/netns/<lab>-<pod>``) and its UTS namespace, which the lab
pins itself (uts.py). Someone may delete the network namespace under a
running container (the pod's sandbox dies, as a pause container can): the
task then runs on in a nameless namespace, and the pinned UTS namespace is
what still proves it is the pod's.
"""

from __future__ import annotations

from netlab.kernel import netns as nsmod
from netlab.kernel import processes as proc


def proc_of(crec: dict) -> proc.ProcId | None:
    try:
        return proc.ProcId(int(crec["pid"]), int(crec["start"]))
    except (KeyError, TypeError, ValueError):
        return None


def task_in(crec: dict, netns: str) -> str | None:
    """The recorded task's state letter while it lives inside the pod's network namespace; None otherwise."""
    p = proc_of(crec)
    if p is None:
        return None
    state = proc.task_state(p)
    if state is None:
        return None
    want = proc.ns_identity(nsmod.netns_path(netns))
    return state if want is not None and proc.ns_identity(f"/proc/{p.pid}/ns/net") == want else None


def is_echo_thread(crec: dict) -> bool:
    """The record names a thread of an echo server (not a process of its own: a command, or an echo
    container started before echo containers shared one process)."""
    p = proc_of(crec)
    group = proc.thread_group(p.pid) if p else None
    return group is not None and group != p.pid


def in_old_sandbox(crec: dict, uts: str | None) -> bool:
    """The recorded task still runs in the pod's UTS namespace (pinned by the lab: ours). Asked once it is
    not in the pod's network namespace: that was deleted, and maybe made again, under it (the pod's
    sandbox died), and the task runs on in the old, nameless one."""
    p = proc_of(crec)
    if p is None or uts is None or proc.task_state(p) is None:
        return False
    want = proc.ns_identity(uts)
    return want is not None and proc.ns_identity(f"/proc/{p.pid}/ns/uts") == want


SANDBOX_REMADE = "its pod's network namespace was made again"


def why_replace(crec: dict | None, argv: list[str], netns: str, uts: str | None = None) -> str | None:
    """Why a container must be (re)started, in words; None when it runs as specified.

    ``uts``: the pod's pinned UTS namespace, which tells a container left in the
    pod's old network namespace from one that exited.
    """
    if not crec:
        return "never started"
    if "error" in crec:
        return "it had failed to start"
    state = task_in(crec, netns)
    if state is None:
        if in_old_sandbox(crec, uts):
            return SANDBOX_REMADE
        return "it had exited"
    if state == "T":
        return "it was stopped"
    if crec.get("argv") != argv:
        return "its command changed"
    return None
