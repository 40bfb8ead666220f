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
from netlab.model import echo_ports as ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.model.topology import Container

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- paths --------------------------------------------------------------------


def log_dir(lab_name: str) -> str:
    return os.path.join(lab_dir(lab_name, create=False), "logs")


def log_path(lab_name: str, pod: str, container: str) -> str:
    """``logs/<pod>.<container>.log``: one folder for the lab (pod and container names are DNS labels, no dots)."""
    return os.path.join(log_dir(lab_name), f"{pod}.{container}.log")


def previous_log_path(lab_name: str, pod: str, container: str) -> str:
    """``logs/<pod>.<container>.previous.log``: the run before the current one, as the kubelet keeps the last
    terminated container's log for ``kubectl logs --previous`` (one only: bounded as the current one)."""
    return os.path.join(log_dir(lab_name), f"{pod}.{container}.previous.log")


def new_run(lab_name: str, pod: str, container: str) -> str | None:
    """A container starts again: its current log becomes the previous one (replacing the one before), and the
    new run writes a file of its own, as the kubelet gives each container instance its own log. Only a file is
    moved, and only over a file: what else stands at either name (a directory, a FIFO, a symlink) is someone's,
    never netlab's, and stays where it is; then the new run cannot start (it would write into the run before's
    log, or into what stands there): the line that says why, as :func:`log_blocked` says it. None: it can."""
    current, previous = log_path(lab_name, pod, container), previous_log_path(lab_name, pod, container)
    blocked = log_blocked(current)
    if blocked is not None or not os.path.lexists(current):  # none: the run before wrote nothing netlab kept
        return blocked
    blocked = log_blocked(previous, "previous log")
    if blocked is not None:
        return blocked
    try:
        os.replace(current, previous)
    except FileNotFoundError:
        pass
    except OSError:  # something put at the previous log's name since it was looked at
        return log_blocked(previous, "previous log") or f"its log {current} cannot become the previous one"
    return None


KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symlink",
         stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


LOG_BLOCKED = "not a file: netlab leaves it as it is"  # in log_blocked's words: what status knows it by (policy.py)


def log_blocked(path: str, what: str = "log") -> str | None:
    """Why a container's next run cannot write its log at ``path`` (``what``: or its previous log, where the
    current one would move): something that is not a file stands there (a directory, a FIFO, a symlink), which
    netlab never moves nor removes. Said, for the container's start to fail in one line; None when it can."""
    try:
        kind = KINDS.get(stat.S_IFMT(os.lstat(path).st_mode))
    except OSError:
        return None
    if kind is None:
        return None
    return f"its {what} {path} is {kind}, {LOG_BLOCKED}; move it away, then run up again"


def forget_runs(lab_name: str, pod: str, container: str, which: tuple[str, ...] = ("log", "previous log")) -> list[str]:
    """The container's two logs go (its current run's and the one before), by their exact names: it left its
    pod (or its pod the lab), or its command changed, where Kubernetes makes a new pod whose container has no
    run before its first (``kubectl logs --previous`` finds none). Only a file goes, as netlab wrote it: what
    else stands at either name (a FIFO, a symlink, a directory) is someone's, left as it is and said, one line
    each (``which``: the names said; a start says its current log's itself, as it fails on it)."""
    why = logs_problem(lab_name)
    if why is not None:
        return [f"pod {pod} container {container}: {log_dir(lab_name)}: {why}; its logs are left alone"]
    out = []
    for what, path in (("log", log_path(lab_name, pod, container)),
                       ("previous log", previous_log_path(lab_name, pod, container))):
        kind = _remove_file(path)
        if kind is not None and what in which:
            out.append(f"pod {pod} container {container}: its {what} {path} is {kind}, {LOG_BLOCKED}")
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
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
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


def container_env(lab: Lab, pod: PodInfo, container: Container) -> dict[str, str]:
    """A clean environment, with the pod's facts like Kubernetes' downward API."""
    return {
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
