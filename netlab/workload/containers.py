"""What a container is, apart from running it: its argv, its environment, its log file.

A container with a ``command`` runs it; one without runs netlab's echo server
on its declared ports (ports.py). The argv recorded for an echo container is
the one ``python3 -m netlab.workload.echo`` would serve it with alone, though
the lab's echo server serves them all in one process (lifecycle.py).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from netlab.realize.state_dir import lab_dir
from netlab.model import command_trust
from netlab.model import echo_ports as ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container

# the PATH a container starts with: model/command_trust.py checks the program a bare name finds in it
CONTAINER_PATH = command_trust.CONTAINER_PATH


# --- paths --------------------------------------------------------------------


def log_dir(lab_name: str) -> str:
    return os.path.join(lab_dir(lab_name, create=False), "logs")


def log_path(lab_name: str, pod: str, container: str, folder: str | None = None) -> str:
    """``logs/<pod>.<container>.log``: one folder for the lab (pod and container names are DNS labels, no dots).
    ``folder``: the lab's :func:`log_dir`, worked out once by a caller that names many logs (checking the state
    folder, ~15 us, for each of 500 pods)."""
    return os.path.join(log_dir(lab_name) if folder is None else folder, f"{pod}.{container}.log")


def previous_log_path(lab_name: str, pod: str, container: str) -> str:
    """``logs/<pod>.<container>.previous.log``: the run before the current one, as the kubelet keeps the last
    terminated container's log for ``kubectl logs --previous`` (one only: bounded as the current one)."""
    return os.path.join(log_dir(lab_name), f"{pod}.{container}.previous.log")


def new_run(lab_name: str, pod: str, container: str, said: list[str] | None = None,
            dir_fd: int | None = None) -> str | None:
    """A container starts again: its current log becomes the previous one (replacing the one before), and the
    new run writes a file of its own, as the kubelet gives each container instance its own log. Only a file is
    moved, and only over a file: what else stands at either name (a directory, a FIFO, a symlink) is someone's,
    never netlab's, and stays where it is; then the new run cannot start (it would write into the run before's
    log, or into what stands there): the line that says why, as :func:`log_blocked` says it. None: it can. The
    move is made in the lab's ``logs`` folder opened fd-relative: one that is a symlink or another mount (a
    user's, :func:`logs_refused`) has nothing moved in it (the new run's output goes to /dev/null); so has a log
    or previous log that is a mount point, a user's file bind-mounted there to keep it (a rename of it is EBUSY: the
    container did not start, QA q53 3): left alone, the new run's output to /dev/null (:func:`open_log`), one line
    appended to ``said``. ``dir_fd``: the lab's ``logs`` folder, opened by the caller (:func:`logs_fd`) for every
    container it starts; else it is opened here, and closed."""
    current, previous = log_path(lab_name, pod, container), previous_log_path(lab_name, pod, container)
    fd = dir_fd if dir_fd is not None else logs_fd(lab_name)
    if fd is None:
        return None
    try:
        mounted = _mounted(fd, current)
        if mounted is not None:
            if said is not None:
                said.append(f"pod {pod} container {container}: its log {mounted} is {A_USERS_FILE}")
            return None
        blocked = log_blocked(current, dir_fd=fd)
        if blocked is not None or not _there(current, fd):  # none: the run before wrote nothing netlab kept
            return blocked
        blocked = log_blocked(previous, "previous log", dir_fd=fd)
        if blocked is not None:
            return blocked
        try:
            os.replace(os.path.basename(current), os.path.basename(previous), src_dir_fd=fd, dst_dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError:  # something put at the previous log's name since it was looked at
            return (log_blocked(previous, "previous log", dir_fd=fd)
                    or f"its log {current} cannot become the previous one")
        return None
    finally:
        if dir_fd is None:
            os.close(fd)


A_USERS_FILE = ("a mount point (a bind mount of a user's file), not netlab's: left alone, nothing moved nor written "
                "in it; the container's output goes to /dev/null")


def _mounted(fd: int, current: str) -> str | None:
    """The container's log ``current`` or its previous log when it is a mount point in the open ``logs`` folder
    ``fd`` (a user's file); None when neither is."""
    from netlab.realize import lab_folder

    for path in (current, current[:-len(".log")] + ".previous.log"):
        if lab_folder.on_another_mount(fd, os.path.basename(path)):
            return path
    return None


def _there(path: str, dir_fd: int) -> bool:
    try:
        os.stat(os.path.basename(path), dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def logs_fd(lab_name: str) -> int | None:
    """The lab's ``logs`` folder, made when missing and opened fd-relative (lab_writes.open_dir); None when it is
    not netlab's to write in (a symlink, another mount: :func:`logs_refused` says it) or cannot be made."""
    from netlab.realize import lab_writes

    try:
        return lab_writes.open_dir(lab_name, ["logs"])
    except (lab_writes.Refused, OSError):
        return None


def logs_refused(lab_name: str) -> str | None:
    """The lab's ``logs`` folder made (as netlab makes it) when missing; the one line ``up`` says when it is not
    netlab's to write in (a symlink, a bind mount of a user's folder), as its containers run with their output
    going to /dev/null; None when it is netlab's."""
    from netlab.realize import lab_writes

    try:
        fd = lab_writes.open_dir(lab_name, ["logs"])
    except lab_writes.Refused as exc:
        return (f"logs: {exc.path}: {exc.why}; the containers' logs are not written there (their output goes to "
                f"/dev/null)")
    except OSError as exc:
        return f"logs: {log_dir(lab_name)}: {exc.strerror}; the containers' output goes to /dev/null"
    if fd is not None:
        os.close(fd)
    return None


_UNCUT_SAID: set[str] = set()  # the logs folders said of by logs_uncut in this process: once each


def logs_uncut(lab_name: str) -> str | None:
    """The one line ``up`` says, once a process, as it starts a command container whose log is in a folder on a
    file system that can cut no file's oldest blocks (NFSv3, 9p, some FUSE, ramfs: echo_log.log_cut, tried there
    on a file gone at once): the lab's echo server cannot start that log over, so it grows without bound (an echo
    container's log, which its server truncates, stays bounded). None on any other, or when the lab's ``logs``
    folder is not netlab's (:func:`logs_refused` says it) or no file can be made there."""
    from netlab.kernel.fstype import fs_type
    from netlab.workload.echo_log import LOG_MAX, log_cut

    folder = log_dir(lab_name)
    fd = None if folder in _UNCUT_SAID else logs_fd(lab_name)
    if fd is None:
        return None
    try:
        if log_cut(".", dir_fd=fd) is not None:
            return None
        fs = fs_type(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    _UNCUT_SAID.add(folder)
    return (f"logs: {folder} is on {fs}, which can neither collapse nor punch a file's oldest blocks (fallocate's "
            f"FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_PUNCH_HOLE): a command container's log cannot start over at "
            f"{LOG_MAX // 2**20} MiB there and grows without bound (a state folder on tmpfs, ext4 or XFS bounds it: "
            "NETLAB_STATE_DIR)")


def open_log(path: str) -> int:
    """A container's log ``path`` opened for its output (appended; never through a symlink, its folder opened
    fd-relative on the lab folder's mount); /dev/null when the lab's ``logs`` folder is not netlab's to write in
    (:func:`logs_refused` says it), or the log or previous log is a user's file mounted there (:func:`new_run`
    says it). Raises OSError as open does."""
    from netlab.realize import lab_writes

    try:
        if log_mounted(path):
            raise lab_writes.Refused(path, A_USERS_FILE)
        return lab_writes.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except lab_writes.Refused:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


def log_mounted(path: str) -> bool:
    """Whether the container's log ``path`` or its previous log is a mount point, a user's file (:func:`new_run`
    says it): its output goes to /dev/null, nothing is written in it."""
    from netlab.realize import lab_writes

    fd = logs_fd(lab_writes.split(path)[0])
    if fd is None:
        return False  # the folder's own line (logs_refused), or none to write in
    try:
        return _mounted(fd, path) is not None
    finally:
        os.close(fd)


def output_logs(lab_name: str, paths: list[str]) -> list[str]:
    """Where each of the lab's containers' logs ``paths`` is written: the path, or /dev/null when the ``logs``
    folder is not netlab's (:func:`logs_refused`) or the log or its previous one is a mount point
    (:func:`log_mounted`); the folder opened once for all of them (an ``up`` of 500 echo pods asks for 500)."""
    if logs_refused(lab_name) is not None:
        return [os.devnull] * len(paths)
    fd = logs_fd(lab_name)
    if fd is None:
        return list(paths)  # none to write in now: as log_mounted says, no mount point
    try:
        return [os.devnull if _mounted(fd, path) is not None else path for path in paths]
    finally:
        os.close(fd)


KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symlink",
         stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


LOG_BLOCKED = "not a file: netlab leaves it as it is"  # in log_blocked's words: what status knows it by (policy.py)


def log_blocked(path: str, what: str = "log", dir_fd: int | None = None) -> str | None:
    """Why a container's next run cannot write its log at ``path`` (``what``: or its previous log, where the
    current one would move): something that is not a file stands there (a directory, a FIFO, a symlink), which
    netlab never moves nor removes. Said, for the container's start to fail in one line; None when it can.
    ``dir_fd``: its folder, open (else it is opened fd-relative: a ``logs`` folder of a user's blocks nothing, its
    output goes to /dev/null)."""
    from netlab.realize import lab_writes

    fd = dir_fd if dir_fd is not None else logs_fd(lab_writes.split(path)[0])
    if fd is None:
        return None
    try:
        kind = KINDS.get(stat.S_IFMT(os.stat(os.path.basename(path), dir_fd=fd, follow_symlinks=False).st_mode))
    except OSError:
        return None
    finally:
        if dir_fd is None:
            os.close(fd)
    if kind is None:
        return None
    return f"its {what} {path} is {kind}, {LOG_BLOCKED}; move it away, then run up again"


def forget_runs(lab_name: str, pod: str, container: str, which: tuple[str, ...] = ("log", "previous log")) -> list[str]:
    """The container's two logs go (its current run's and the one before), by their exact names: it left its
    pod (or its pod the lab), or its command changed, where Kubernetes makes a new pod whose container has no
    run before its first (``kubectl logs --previous`` finds none). Only a file goes, as netlab wrote it: what
    else stands at either name (a FIFO, a symlink, a directory) is someone's, left as it is and said, one line
    each (``which``: the names said; a start says its current log's itself, as it fails on it)."""
    from netlab.realize import lab_folder, state_dir

    fd, why = lab_folder.open_sub(state_dir.STATE_ROOT, lab_name, "logs")
    if why is not None:
        return [f"pod {pod} container {container}: {log_dir(lab_name)}: {why}; its logs are left alone"]
    if fd is None:
        return []  # no logs folder: nothing to remove
    out = []
    try:
        for what, path in (("log", log_path(lab_name, pod, container)),
                           ("previous log", previous_log_path(lab_name, pod, container))):
            kind = _remove_file(os.path.basename(path), fd)  # in the folder checked, never through a swapped path
            if kind is not None and what in which:
                out.append(f"pod {pod} container {container}: its {what} {path} is {kind}, {LOG_BLOCKED}")
    finally:
        os.close(fd)
    return out


def _remove_file(path: str, dir_fd: int | None = None) -> str | None:
    """Unlink ``path`` (in the open folder ``dir_fd``: a name) if it is a file, as netlab writes a log; what it is
    when it is not (a FIFO, a symlink: not netlab's, left, never followed), None when it was a file or nothing is
    there."""
    try:
        mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        return KINDS.get(stat.S_IFMT(mode), "not a file")
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass
    return None


def note_start_error(path: str, why: str) -> None:
    """The run that could not start: its log holds the reason (one line), as ``netlab logs`` shows it."""
    from netlab.realize import lab_writes

    try:  # fd-relative, on the lab folder's mount: nothing written in a user's logs folder
        fd = lab_writes.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except (lab_writes.Refused, OSError, ValueError):
        return
    try:
        os.write(fd, f"netlab: could not start: {why}\n".encode(errors="replace"))
    except OSError:
        pass
    finally:
        os.close(fd)


def log_files(lab_name: str) -> list[str]:
    try:
        return os.listdir(log_dir(lab_name))
    except OSError:
        return []


def logs_problem(lab_name: str) -> str | None:
    """Why nothing may be removed in the lab's ``logs`` folder: it is a symlink, or on another mount (a bind mount
    of a user's folder, to keep the logs past ``down``), in lab_folder's words; None when it is netlab's."""
    from netlab.realize import lab_folder, state_dir

    return lab_folder.sub_problem(state_dir.STATE_ROOT, lab_name, "logs")


def remove_logs(lab_name: str, names: list[str]) -> list[str]:
    """Files of the lab's log directory, by the names its listing gave (:func:`logs_by_pod`): only a file, as
    netlab wrote it; what else stands there (a FIFO, a symlink, a directory) is someone's, left as it is and said,
    one line each. A ``logs`` folder that is a symlink or on another mount is the user's: nothing in it is removed,
    said in one line."""
    from netlab.realize import lab_folder, state_dir

    base = log_dir(lab_name)
    if not names:
        return []
    fd, why = lab_folder.open_sub(state_dir.STATE_ROOT, lab_name, "logs")
    if fd is None:
        return [f"{base}: {why}; left alone"] if why else []
    out = []
    try:
        for name in names:  # in the folder opened once, by dir_fd: never through a path a swap could redirect
            kind = _remove_file(name, fd)
            if kind is not None:
                out.append(f"log {os.path.join(base, name)} is {kind}, {LOG_BLOCKED}")
    finally:
        os.close(fd)
    return out


def logs_by_pod(lab_name: str) -> dict[str, list[str]]:
    """The lab's log files (``<pod>.<container>.log`` and ``.previous.log``; a pod name has no dot) by pod."""
    out: dict[str, list[str]] = {}
    for name in log_files(lab_name):
        pod, dot, rest = name.partition(".")
        if dot and rest.endswith(".log"):
            out.setdefault(pod, []).append(name)
    return out


# --- what runs in a container ---------------------------------------------------


def echo_ports(pod: PodInfo, container: Container) -> list[tuple[int, str]]:
    """Ports the built-in echo server of this container listens on (see model/echo_ports.py)."""
    return ports.echo_ports(pod.containers, container)


def container_argv(pod: PodInfo, container: Container) -> list[str]:
    """argv of a container: its command, or the echo server's (as ``python3 -m netlab.workload.echo``
    would serve it alone: the record of what the lab's echo server serves it with). The cluster DNS add-on's
    dnsmasq also gets the lab's records file (dns_records.py)."""
    if container.command:
        from netlab.workload import dns_records

        if dns_records.is_addon(pod):
            return [*container.command, *dns_records.argv_tail(dns_records.lab_of(pod))]
        return list(container.command)
    argv = ["python3", "-m", "netlab.workload.echo", "--pod", pod.name]
    for port, protocol in echo_ports(pod, container):
        argv += ["--port", f"{port}/{protocol}"]
    return argv


def service_env(lab: Lab, pod: PodInfo) -> dict[str, str]:
    """The Service variables the kubelet gives a container of ``pod`` that starts now (model/service_env.py: the
    lab's Services as they are now). Recorded with each run (lifecycle.py; each set once: service_envs.py), as the
    runtime keeps a container's spec: ``netlab exec -c`` gives a running container's command the ones it started
    with."""
    from netlab.model.service_env import pod_service_env

    return pod_service_env(lab.topo.services, lab.addressing.service_ip, pod.spec.namespace,
                           pod.spec.enable_service_links)


def container_env(lab: Lab, pod: PodInfo, container: Container, services: dict[str, str] | None = None
                  ) -> dict[str, str]:
    """A clean environment, with the pod's facts like Kubernetes' downward API, and the Service variables
    ``services`` (default: :func:`service_env`, the ones it would get now); a Service variable never replaces
    one of netlab's, as a container's own env wins over them in Kubernetes."""
    return {
        **(service_env(lab, pod) if services is None else services),
        "PATH": CONTAINER_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "HOSTNAME": pod.name,
        "POD_NAME": pod.name,
        "POD_IP": str(pod.ip),
        "NODE_NAME": pod.node,
        "NETLAB_LAB": lab.name,
        "NETLAB_CONTAINER": container.name,
    }
