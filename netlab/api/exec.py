"""Into a lab: the namespaces a command joins (``netlab exec``, ``Lab.exec``) and the containers' logs.

A pod's command joins the pod's network and UTS namespaces, like its
containers (``hostname`` prints the pod's name); a node's, an internet
host's (the gateway's and the balancer's too) and the underlay's join its
network and UTS namespaces (``hostname`` prints its name,
netlab.workload.node_uts).
Mounts are set up as ``ip netns exec`` does
(netlab.kernel.spawning.enter_pod_here): /etc/netns/<namespace>/ files over
/etc (a pod's resolv.conf and hosts), and a /sys of the namespace's devices.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping

from netlab.errors import EnvironmentNotReady, NetnsGone, UsageError, display_path, from_file_way, status_way
from netlab.model.lab import Lab, PodInfo
from netlab.workload.reconfigure import lab_netns_gone, repair_command
from netlab.cni.terminated import released, released_line
from netlab.realize.interrupted import taken_down
from netlab.realize.state import LabState
from netlab.workload import exits, lifecycle, policy, tasks
from netlab.workload.containers import previous_log_path
from netlab.workload.echo_log import LogFile
from netlab.kernel.netns import fd_is_netns, netns_path
from netlab.kernel import processes as proc
from netlab.kernel.spawning import enter_pod_here, missing_interpreter


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


def exec_target(state: LabState, lab: Lab, name: str, gone: bool = False) -> Target:
    """The namespaces of pod, node or internet host ``name`` (or ``underlay``) of a running lab (``gone``: a reader
    of the namespace asks, inspect: a terminal pod's removed one is said as trace and capture say it, exit 2)."""
    netns = lab.netns_of(name)
    if netns is None:
        known = names(lab)
        shown = ", ".join(known[:15]) + (", ..." if len(known) > 15 else "")
        raise UsageError(f"lab {lab.name} has no pod, node or host {name!r} (it has: {shown}, underlay)")
    if netns not in state.netns and name in released(state):  # a terminal pod's stopped sandbox (cni/terminated.py)
        if gone:
            exc = NetnsGone(netns, netns_path(netns), lab.name, lab_up=True)
            exc.taken_down = released_line(name, gone=True)
            raise exc
        raise EnvironmentNotReady(released_line(name))
    if netns not in state.netns:
        raise UsageError(f"{name} is not part of the running lab {lab.name}; `{from_file_way(api=False)}` of the "
                         "file that has it adds it")
    path = lifecycle.uts_path(lab.name, name)  # every pod, node, internet host and the underlay has one
    return Target(name, netns, path if lifecycle.is_uts_mount(path) else None, lab.name)


def container_environment(state: LabState, lab: Lab, name: str, container: str) -> dict[str, str]:
    """``netlab exec NAME -c CONTAINER``: the environment the container of pod ``name`` runs with, as kubectl exec
    runs a command with the one the runtime made the container with: the Service variables it started with
    (recorded with its run; a Service added since is not there until it starts again), POD_NAME ...
    (workload/containers.container_env); not the id of its run, which names the container's own process only.
    A container that does not run has none to give: kubectl exec's "container not running", said in one line
    (EnvironmentNotReady). A run recorded by a netlab before the record kept them: the Services as they are now."""
    from netlab.workload.containers import container_env

    pod = next((p for p in lab.pods if p.name == name), None)
    if pod is None:
        raise UsageError(f"-c {container}: {name} is not a pod, and only a pod has containers; leave -c out")
    chosen = next((c for c in pod.containers if c.name == container), None)
    if chosen is None:
        have = ", ".join(c.name for c in pod.containers)
        raise UsageError(f"-c {container}: pod {name} has no such container (it has: {have})")
    crec = next((rec for info, c, rec in lifecycle.containers(lab, state)
                 if info.name == name and c.name == container), None)
    why = _not_running(crec, pod.netns)
    if crec is None or why is not None:
        raise EnvironmentNotReady(f"-c {container}: container {container} of pod {name} is not running ({why}), "
                                  f"as kubectl exec says \"container not running\"; {_again(lab, pod, container, crec)}"
                                  "; without -c the command runs in the pod's namespaces")
    return container_env(lab, pod, chosen, lifecycle.service_env_of(state, crec))


def _again(lab: Lab, pod: PodInfo, container: str, crec: dict[str, object] | None) -> str:
    """What starts a container that does not run again, as its pod's restartPolicy says and status says it: `up`
    for one never started or that could not start (tried again whatever the policy), or one the policy restarts;
    for one it keeps down (Never; OnFailure after exit 0) no `up` does (it said `up` did, for every policy)."""
    fix = repair_command(lab.name)
    if crec is None or "error" in crec:
        return f"`{fix}` starts it" + (" (tried again whatever the pod's restartPolicy)" if crec else "")
    restart, cid = pod.spec.restart_policy, f"{pod.name}/{container}"
    code = exits.exit_codes(lab.name, {cid: crec}).get(cid)
    if policy.should_restart(restart, code):
        return f"`{fix}` starts it again, as its pod's restartPolicy {restart} says"
    how = "completed (exit code 0)" if code == 0 else "exited" if code is None else f"exited with code {code}"
    return f"it {how}, and restartPolicy {restart}: `netlab up` leaves it so; {policy.AGAIN}"


def _not_running(crec: dict[str, object] | None, netns: str) -> str | None:
    """Why a container's recorded run is not running now, in words; None while its task runs in its pod (a
    command container's process, an echo container's thread of the lab's echo server)."""
    if not crec:
        return "it was never started"
    if "error" in crec:
        return f"it could not start: {crec['error']}"
    return None if tasks.task_of(crec, netns) is not None else "it has exited"


def cannot_run(program: str | bytes | os.PathLike[str] | os.PathLike[bytes], exc: OSError | ValueError,
               env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The exit status and line of a command whose program could not be started, as a shell gives them: 127 when
    there is no such program, 126 when it is there but cannot be run (no permission, not a program, a NUL in
    its name). ``netlab exec``'s exit code and message, and what :meth:`Lab.exec` returns. The program is named
    as :func:`display_path` shows a name: a NUL, a newline or an escape sequence in it is written escaped, so the
    line stays one line and the terminal is not told to do anything. A path object or bytes, as Popen takes
    them, is named by its text. No such file is "command not found"; a file that is there whose interpreter is
    not (``env``: the environment whose PATH found it, default this process's) is said so, as the kernel's ENOENT
    of it means (kernel/spawning.missing_interpreter), with the same 127 as bash."""
    program = os.fsdecode(program)
    if isinstance(exc, FileNotFoundError):
        found = program if "/" in program else _on_path(program, env)
        why = missing_interpreter(found) if found else None
        return 127, f"netlab: {display_path(program)}: {why or 'command not found'}"
    if isinstance(exc, PermissionError):
        return 126, f"netlab: {display_path(program)}: permission denied"
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return 126, f"netlab: {display_path(program[:80])}: cannot execute: {why}"


def _on_path(program: str, env: Mapping[str, str] | None) -> str | None:
    """The file execvp would try for ``program``: the first executable file of that name on PATH."""
    for d in os.get_exec_path(env):
        full = os.path.join(d or ".", program)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return None


@dataclass(frozen=True)
class LogWriter:
    """Who writes a container's current log: the pid of its task while it runs in its pod (None: it does not),
    and whether it was started at all (the lab's state has a record of it)."""

    pid: int | None
    started: bool


def log_writer(state: LabState, lab: Lab, pod: str, container: str) -> LogWriter:
    """The :class:`LogWriter` of a pod's container in the running lab."""
    for info, c, crec in lifecycle.containers(lab, state):
        if info.name == pod and c.name == container and crec:
            running = "error" not in crec and tasks.task_of(crec, info.netns) is not None
            return LogWriter(int(crec["pid"]) if running else None, True)
    return LogWriter(None, False)


def end_of(writer: LogWriter) -> int | None:
    """A pidfd of the container's task, readable once it has ended (the thread, for an echo container: a
    thread's pidfd, PIDFD_THREAD), for ``logs -f`` to end with it as ``kubectl logs -f`` does; None when it does
    not run (ended already, or never started)."""
    if writer.pid is None:
        return None
    thread = proc.thread_group(writer.pid) not in (None, writer.pid)
    try:
        return os.pidfd_open(writer.pid, os.O_EXCL if thread else 0)  # O_EXCL: PIDFD_THREAD (linux/pidfd.h)
    except OSError:  # ESRCH: it ended since
        return None


def _deleted_log_fd(pid: int, path: str) -> str | None:
    """/proc/PID/fd/N of the task's descriptor of the log file that was at ``path`` and was deleted since (the
    kernel names it ``PATH (deleted)``): what it writes to now, readable there while it runs; None when it
    holds no such file (the log was moved away, or it closed it)."""
    folder = f"/proc/{proc.thread_group(pid) or pid}/fd"  # an echo container's thread: its server's files
    try:
        fds = os.listdir(folder)
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(os.path.join(folder, fd)) == path + " (deleted)":
                return os.path.join(folder, fd)
        except OSError:
            continue
    return None


def _written_elsewhere(path: str, pod: str, container: str, pid: int, what: str) -> EnvironmentNotReady:
    """The log at ``path`` is no longer the file the running container writes (``what`` happened to it): its
    output until its next start is not there. No `up` repairs that: the container's stdout and stderr are
    descriptors of the old file, which only a new start replaces, and `up` does not restart a running one."""
    held = _deleted_log_fd(pid, path)
    where = (f"it writes on to the deleted file, readable as {held} while it runs" if held else
             "it writes on to the file it had open, which is not this one")
    return EnvironmentNotReady(f"the log of {pod}/{container}, {path}, was {what} while the container runs: {where}; "
                               "its next start writes a new log (`up` does not restart a running container)")


def open_log(path: str, pod: str, container: str, lab: str, previous: bool = False,
             writer: LogWriter | None = None) -> LogFile:
    """A container's log, open for reading from where its data starts (:class:`~netlab.workload.echo_log.LogFile`:
    no hole of a log that started over on tmpfs is read). ``previous``: the log of the run before the current one,
    kubectl's error when it has none. When there is none yet: UsageError. When the file was deleted, or something
    else (a directory, a FIFO, a symlink, another file) stands where netlab writes it, which is never read nor
    waited for: EnvironmentNotReady, saying what ``writer`` (:func:`log_writer`) makes of it: a running container
    writes on to its old file until its next start."""
    running = writer.pid if writer is not None and not previous else None
    from netlab.realize import lab_folder, state_dir

    # A logs/ of a user's (a symlink, a bind mount): up wrote no log there (the output went to /dev/null), so what
    # is in it is the user's, never said as the container's; netlab's own is read in the folder it checked.
    dfd, why = lab_folder.open_sub(state_dir.STATE_ROOT, lab, "logs")
    if why is not None:
        raise UsageError(f"no log for {pod}/{container}: {os.path.dirname(path)}: {why}; the containers' logs are "
                         "not kept (their output goes to /dev/null)")
    try:
        try:
            fd = os.open(path if dfd is None else os.path.basename(path),
                         os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            if dfd is not None:
                os.close(dfd)
    except FileNotFoundError:
        # read_up: the lab's folder, logs and state, went (down's last step) since the caller read it up
        # or a `down` (an `up`) killed halfway took it (did not make it yet): list's line, `down` finishes it
        gone = taken_down(lab, f"the log of {pod}/{container} went with it", not os.path.isdir(os.path.dirname(path)),
                          killed=f"the log of {pod}/{container} is not there")
        if gone is not None:  # a `netlab down` took it away with the lab's folder: no fault to repair
            raise gone from None
        if previous:
            raise UsageError(f'previous terminated container "{container}" in pod "{pod}" not found') from None
        if running is not None:
            raise _written_elsewhere(path, pod, container, running, "deleted") from None
        if writer is not None and writer.started:
            raise EnvironmentNotReady(f"the log of {pod}/{container}, {path}, was deleted; the container's next "
                                      f"start writes a new one (`{repair_command(lab)}` starts it again as its "
                                      "pod's restartPolicy says)") from None
        raise UsageError(f"no log for {pod}/{container} yet (was it started? `{status_way(lab, api=False)}`)"
                         ) from None
    except OSError as exc:  # ELOOP: a symlink
        if running is not None:
            raise _written_elsewhere(path, pod, container, running, "replaced") from None
        raise EnvironmentNotReady(f"the log of {pod}/{container} cannot be read: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        if running is not None:
            raise _written_elsewhere(path, pod, container, running, "replaced")
        if previous:
            raise EnvironmentNotReady(f"the previous log of {pod}/{container} is not a file ({path} was replaced)")
        if os.path.isdir(path):  # someone's: no start moves it (containers.new_run), so none writes a new log
            raise EnvironmentNotReady(f"the log of {pod}/{container}, {path}, is a directory, not a file: the "
                                      "container cannot start until it is moved away (netlab leaves it as it is); "
                                      f"then `{repair_command(lab)}` starts it")
        raise EnvironmentNotReady(f"the log of {pod}/{container} is not a file ({path} was replaced); the "
                                  f"container's next start writes a new one (`{repair_command(lab)}` starts it "
                                  "again as its pod's restartPolicy says)")
    if running is not None and _deleted_log_fd(running, path) is not None:  # another file put in its place
        os.close(fd)
        raise _written_elsewhere(path, pod, container, running, "replaced")
    return LogFile(fd)  # past the hole of a log that started over on tmpfs, never reading one punched meanwhile


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
