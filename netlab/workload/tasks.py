"""A container's recorded task, as the kernel sees it now: alive, where, and why it must be replaced.

The lab's state records each container's task by pid and start time
(lifecycle.py), so a recycled pid is never taken for it. A command
container is a process of its own; an echo container is a thread of the
lab's echo server. Both run in two namespaces of the pod: its network
namespace (``/run/netns/<lab>-<pod>``) and its UTS namespace, which the lab
pins itself (uts.py). Someone may delete the network namespace under a
running container (the pod's sandbox dies, as a pause container can): the
task then runs on in a nameless namespace, and the pinned UTS namespace is
what still proves it is the pod's. A command container's record also keeps
the identity of the network namespace it was started in (``net``), which
tells that case from a container that made a network namespace of its own
(``unshare --net``, as a privileged container may): that one still runs as
specified.
"""

from __future__ import annotations

from netlab.kernel import netns as nsmod
from netlab.kernel import processes as proc

SANDBOX_REMADE = "its pod's network namespace was made again"  # why_replace's reason for a dead sandbox
EXITED = "it had exited"  # ... for a container whose process is gone
FAILED_START = "it had failed to start"  # ... for one whose program could not be started
# why_replace's reason for a container whose command the topology changed. A pod's commands cannot change in
# Kubernetes: a Deployment makes a new pod, whose containers have restarted 0 times (and CoreDNS reloads its
# Corefile without a restart). So such a container is counted as a new one, not as a restart.
COMMAND_CHANGED = "its command changed"
STOPPED = "it was stopped"  # ... for one whose process is stopped (SIGSTOP, SIGTSTP)


RUN_ENV = "NETLAB_CONTAINER_ID"  # a command container's run: its record's id, in the environment of all it starts


def run_mark(crec: dict) -> str | None:
    """The environment entry (``NETLAB_CONTAINER_ID=<id>``) every process of this run of a command container
    inherits (lifecycle.py sets it); None for a record without one (an echo container's)."""
    rid = crec.get("id") if isinstance(crec, dict) else None
    return f"{RUN_ENV}={rid}" if isinstance(rid, str) and rid else None


def proc_of(crec: dict) -> proc.ProcId | None:
    try:
        return proc.ProcId(int(crec["pid"]), int(crec["start"]))
    except (KeyError, TypeError, ValueError):
        return None


def alive(crec: dict) -> bool:
    """The recorded process of a container still exists (wherever it runs)."""
    p = proc_of(crec)
    return p is not None and proc.alive(p)


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


def in_pod_uts(crec: dict, uts: str | None) -> bool:
    """The recorded task still runs in the pod's UTS namespace (pinned by the lab: ours), wherever its
    network namespace is."""
    p = proc_of(crec)
    if p is None or uts is None or proc.task_state(p) is None:
        return False
    want = proc.ns_identity(uts)
    return want is not None and proc.ns_identity(f"/proc/{p.pid}/ns/uts") == want


def started_in(crec: dict) -> tuple[int, ...] | None:
    """The identity of the network namespace the container was started in, as recorded: (st_dev, st_ino,
    the pin's change time) (kernel/processes.ns_birth), or the first two alone from an older netlab; None
    when not recorded, as for an echo container."""
    net = crec.get("net")
    return tuple(net) if isinstance(net, (list, tuple)) and len(net) in (2, 3) else None


def _still_first(netns: str, first: tuple[int, ...]) -> bool:
    """The pod's network namespace is still the one the container was started in: the same inode and, where
    recorded, the same pin (an inode number is reused once its namespace is freed)."""
    now = proc.ns_birth(nsmod.netns_path(netns))
    return now is not None and now[:len(first)] == first


def in_old_sandbox(crec: dict, uts: str | None, netns: str) -> bool:
    """The recorded task runs on in the pod's UTS namespace while the pod's network namespace is no longer
    the one it was started in: that was deleted, and maybe made again, under it (the pod's sandbox
    died), and the task runs on in the old, nameless one. Asked once it is not in the pod's network
    namespace."""
    if not in_pod_uts(crec, uts):
        return False
    first = started_in(crec)
    return first is None or not _still_first(netns, first)


def in_own_netns(crec: dict, netns: str) -> str | None:
    """The recorded task's state letter when it lives in a network namespace it made itself: it was started
    in the pod's, which is still there, and has left it (``unshare --net``); None otherwise."""
    first, p = started_in(crec), proc_of(crec)
    if first is None or p is None or not _still_first(netns, first):
        return None
    state = proc.task_state(p)
    now = proc.ns_identity(f"/proc/{p.pid}/ns/net")
    return state if state is not None and now is not None and now != first[:2] else None


def task_of(crec: dict, netns: str) -> str | None:
    """The recorded task's state letter while it is the pod's container: in the pod's network namespace,
    or in one of its own making (:func:`in_own_netns`); None otherwise."""
    return task_in(crec, netns) or in_own_netns(crec, netns)


def why_replace(crec: dict | None, argv: list[str], netns: str, uts: str | None = None) -> str | None:
    """Why a container must be (re)started, in words; None when it runs as specified.

    ``uts``: the pod's pinned UTS namespace, which tells a container left in the
    pod's old network namespace from one that exited.
    """
    if not crec:
        return "never started"
    if crec.get("argv") != argv:
        # First, whatever became of the old run (exited, stopped, could not start, left in a dead sandbox): a
        # changed command is a new pod's container, which runs once, never held by the old pod's restartPolicy
        # or its back-off.
        return COMMAND_CHANGED
    if "error" in crec:
        return FAILED_START
    state = task_in(crec, netns)
    if state is None:
        if in_old_sandbox(crec, uts, netns):
            return SANDBOX_REMADE
        state = in_own_netns(crec, netns)
        if state is None:
            return EXITED
    if state == "T":
        return STOPPED
    return None
