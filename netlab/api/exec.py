"""Into a lab: the namespaces a command joins (``netlab exec``, ``Lab.exec``) and the containers' logs.

A pod's command joins the pod's network and UTS namespaces, like its
containers (``hostname`` prints the pod's name); a node's, an internet
host's (the gateway's and the balancer's too) and the underlay's join its
network and UTS namespaces (``hostname`` prints its name,
netlab.workload.node_uts).
Mounts are set up as ``ip netns exec`` does
(netlab.kernel.processes.enter_pod_here): /etc/netns/<namespace>/ files over
/etc (a pod's resolv.conf and hosts), and a /sys of the namespace's devices.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from netlab.errors import UsageError, display_path
from netlab.model.lab import Lab
from netlab.realize.state import LabState, lab_netns_gone, repair_command
from netlab.workload import lifecycle
from netlab.workload.containers import previous_log_path
from netlab.kernel.netns import fd_is_netns, netns_path
from netlab.kernel.processes import enter_pod_here


@dataclass(frozen=True)
class Target:
    """Where a command runs: a namespace, and its UTS namespace's file (None: its pin is gone)."""

    name: str
    netns: str
    uts: str | None
    lab: str

    @contextmanager
    def opened(self) -> Iterator[Enter]:
        """The namespaces' files, open while the block runs; the value joins them when called."""
        try:
            net_fd = os.open(netns_path(self.netns), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # `ip netns del`: said as every command says it (netlab.errors.NetnsGone)
            raise lab_netns_gone(self.netns, self.lab) from None
        uts_fd = None
        try:
            if not fd_is_netns(net_fd):
                # `umount /run/netns/<name>` (the first half of `ip netns del`) leaves the empty file: no namespace
                # to join (setns says EINVAL), said as a deleted one, which `up` makes again (lab/ownership.py)
                raise lab_netns_gone(self.netns, self.lab)
            if self.uts is not None:
                uts_fd = os.open(self.uts, os.O_RDONLY | os.O_CLOEXEC)
            yield Enter(net_fd, uts_fd, self.netns)
        finally:
            os.close(net_fd)
            if uts_fd is not None:
                os.close(uts_fd)


class Enter:
    """Called in a process (a child before exec, or ``netlab exec`` itself): join the target's namespaces."""

    def __init__(self, net_fd: int, uts_fd: int | None, netns: str):
        self.net_fd, self.uts_fd, self.netns = net_fd, uts_fd, netns
        self.fds = tuple(fd for fd in (net_fd, uts_fd) if fd is not None)

    def __call__(self) -> None:
        enter_pod_here(self.net_fd, self.uts_fd, self.netns)


def names(lab: Lab) -> list[str]:
    return [n.name for n in lab.nodes] + [p.name for p in lab.pods] + [h for h, _ in lab.internet_hosts]


def exec_target(state: LabState, lab: Lab, name: str) -> Target:
    """The namespaces of pod, node or internet host ``name`` (or ``underlay``) of a running lab."""
    netns = lab.netns_of(name)
    if netns is None:
        known = names(lab)
        shown = ", ".join(known[:15]) + (", ..." if len(known) > 15 else "")
        raise UsageError(f"lab {lab.name} has no pod, node or host {name!r} (it has: {shown}, underlay)")
    if netns not in state.netns:
        raise UsageError(f"{name} is not part of the running lab {lab.name}; `sudo netlab up -t FILE` of the file "
                         "that has it adds it")
    path = lifecycle.uts_path(lab.name, name)  # every pod, node, internet host and the underlay has one
    return Target(name, netns, path if lifecycle.is_uts_mount(path) else None, lab.name)


def cannot_run(program: str | bytes | os.PathLike[str] | os.PathLike[bytes], exc: OSError | ValueError
               ) -> tuple[int, str]:
    """The exit status and line of a command whose program could not be started, as a shell gives them: 127 when
    there is no such program, 126 when it is there but cannot be run (no permission, not a program, a NUL in
    its name). ``netlab exec``'s exit code and message, and what :meth:`Lab.exec` returns. The program is named
    as :func:`display_path` shows a name: a NUL, a newline or an escape sequence in it is written escaped, so the
    line stays one line and the terminal is not told to do anything. A path object or bytes, as Popen takes
    them, is named by its text."""
    program = os.fsdecode(program)
    if isinstance(exc, FileNotFoundError):
        return 127, f"netlab: {display_path(program)}: command not found"
    if isinstance(exc, PermissionError):
        return 126, f"netlab: {display_path(program)}: permission denied"
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return 126, f"netlab: {display_path(program[:80])}: cannot execute: {why}"


def open_log(path: str, pod: str, container: str, lab: str, previous: bool = False) -> BinaryIO:
    """A container's log, open for reading: UsageError when there is none yet, or when something else (a
    directory, a FIFO, a symlink) stands where netlab writes it, which is never read nor waited for.
    ``previous``: the log of the run before the current one, kubectl's error when it has none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if previous:
            raise UsageError(f'previous terminated container "{container}" in pod "{pod}" not found') from None
        raise UsageError(f"no log for {pod}/{container} yet (was it started? `sudo netlab status --lab {lab}`)"
                         ) from None
    except OSError as exc:  # ELOOP: a symlink
        raise UsageError(f"the log of {pod}/{container} cannot be read: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"the log of {pod}/{container} is not a file ({path} was replaced); "
                         f"`{repair_command(lab)}` starts the container again with a new one")
    return os.fdopen(fd, "rb")


def log_file(lab: Lab, pod: str, container: str | None = None, previous: bool = False) -> tuple[str, str]:
    """(container, path of its log) of a pod's container; the pod's first container by default. The log of its
    current run (each run has its own, as each container instance of the kubelet), or with ``previous`` of
    the run before it."""
    info = next((p for p in lab.pods if p.name == pod), None)
    if info is None:
        pods = ", ".join(p.name for p in lab.pods) or "none"
        raise UsageError(f"lab {lab.name} has no pod {pod!r} (pods: {pods})")
    containers = [c.name for c in info.containers]
    if container is None:
        container = containers[0]
    elif container not in containers:
        raise UsageError(f"pod {pod} has no container {container!r} (containers: {', '.join(containers)})")
    if previous:
        return container, previous_log_path(lab.name, pod, container)
    return container, lifecycle.log_path(lab.name, pod, container)
