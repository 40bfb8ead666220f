"""Starting a container: a command in a pod's namespaces, detached, with every signal at its default.

Containers are started with a double fork: the intermediate child (run with
:func:`netlab.kernel.child.run_in_child`, which brings its answer back)
calls ``setsid`` and forks the container, so the container is re-parented to
init when the intermediate exits (no zombies in the netlab CLI, nothing dies
with it). The container enters the pod's network and UTS namespaces, gets a
private mount namespace where ``/etc/netns/<netns>/*`` (resolv.conf, hosts)
is bind-mounted over ``/etc`` and ``/sys`` shows the namespace's devices (as
``ip netns exec`` does), and ``/etc/hostname`` holds the pod's hostname (as
containerd's sandbox file), and execs the command with stdout and stderr on its
log file. It closes every other descriptor first, so the CLI's lock file is
never inherited. The intermediate waits (bounded) for the exec: a pipe that
closes on exec says it happened, a line on it says why it did not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import stat
import time
from typing import Mapping, Sequence

from netlab.errors import display_path
from netlab.kernel import kill, netns as nsmod, nofile
from netlab.kernel.child import ChildError, readable, run_in_child
from netlab.kernel.processes import ProcId, start_time
from netlab.model.naming import ETC_NETNS

EXEC_WAIT = 10.0  # seconds the intermediate child waits for the container's exec
# The umask a container's process starts with: runc's when the OCI spec gives none (containerd, CRI-O, so the
# kubelet's containers: libcontainer's finalizeRootfs, unix.Umask(0o022)), not the one of the netlab that starts it
CONTAINER_UMASK = 0o022
STOP_GRACE = 3.0  # seconds a process a container replaces has to exit on SIGTERM (then SIGKILL), as kill.terminate


def default_signals() -> None:
    """Every signal at its default, as a container runtime starts a container's process (SigIgn 0): called just
    before the exec of a container's command, or of `netlab exec`'s. Python ignores SIGPIPE and SIGXFSZ, netlab's
    parent may ignore others (SIGHUP under nohup, SIGINT and SIGQUIT in a script's `&` job), and an ignored signal
    stays ignored across exec (`yes | head -1` said "Broken pipe", exit 1, where it dies quietly, 141)."""
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with contextlib.suppress(OSError, ValueError):  # 32 and 33: the C library's own
            signal.signal(sig, signal.SIG_DFL)


class SpawnError(OSError):
    pass


def _etc_overrides(netns: str) -> list[tuple[str, str]]:
    """(source, target) bind mounts ``ip netns exec`` would make from /etc/netns/<netns>/."""
    base = os.path.join(ETC_NETNS, netns)
    try:
        names = sorted(os.listdir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [(os.path.join(base, n), os.path.join("/etc", n)) for n in names
            if not n.startswith(".") and os.path.lexists(os.path.join("/etc", n))]


def enter_pod_here(net_fd: int, uts_fd: int | None, netns: str, mounts: bool = True) -> None:
    """In a child about to exec: join the pod's net (and UTS) namespace and set up mounts like ip netns exec.

    A private mount namespace keeps the /etc and /sys changes to this process.
    Copying the mount table costs time in proportion to the machine's mounts
    (each lab namespace is one), so the echo server, which needs neither
    /etc/netns nor /sys, skips it (``mounts=False``). Mount failures are not
    fatal: the network namespace is what matters.
    """
    nsmod.setns(net_fd, nsmod.CLONE_NEWNET)
    if uts_fd is not None:
        nsmod.setns(uts_fd, nsmod.CLONE_NEWUTS)
    if not mounts:
        return
    try:
        nsmod.unshare(nsmod.CLONE_NEWNS)
        # Stop our mounts propagating back to the host (as `ip netns exec` does).
        nsmod.mount("none", "/", None, nsmod.MS_SLAVE | nsmod.MS_REC)
    except OSError:
        return
    try:
        nsmod.detach("/sys")
        nsmod.mount(netns, "/sys", "sysfs")
    except OSError:
        pass
    if uts_fd is not None:
        _own_hostname_file()
    for src, dst in _etc_overrides(netns):
        try:
            nsmod.mount(src, dst, None, nsmod.MS_BIND)
        except OSError:
            pass


def _own_hostname_file(scratch: str = "/tmp") -> None:
    """/etc/hostname holding the pod's hostname (its UTS namespace's, just joined), as containerd and CRI-O
    bind-mount a file of the sandbox's hostname there, in this process's private mount namespace alone: a tmpfs
    of its own, on ``scratch`` for a moment (detached again once the file is bound, so ``scratch`` shows what it
    did; the bind mount keeps the tmpfs). Nothing is written on the host, and the file goes with the process's
    mount namespace. A file of /etc/netns/<netns>/ named hostname still wins, as ``ip netns exec`` binds it after."""
    if not os.path.exists("/etc/hostname"):
        return  # nothing to cover (a bind mount needs its target)
    try:
        nsmod.mount("netlab-hostname", scratch, "tmpfs", 0, "mode=0755,size=4k,nr_inodes=4")
    except OSError:
        return
    try:
        path = os.path.join(scratch, "hostname")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (os.uname().nodename + "\n").encode())
        finally:
            os.close(fd)
        nsmod.mount(path, "/etc/hostname", None, nsmod.MS_BIND)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            nsmod.detach(scratch)


def _which(cmd: str, env: Mapping[str, str]) -> str:
    if "/" in cmd:
        return cmd
    for d in env.get("PATH", os.defpath).split(":"):
        full = os.path.join(d or ".", cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    raise SpawnError(errno.ENOENT, f"{cmd}: command not found (PATH={env.get('PATH', '')})")


def exec_failed(program: str, code: int, path: str | None = None) -> str:
    """A command the kernel would not exec, said as a shell says it (and ``netlab exec``, api/exec.cannot_run):
    ``/x: command not found`` (ENOENT, no such file), ``/etc/passwd: permission denied`` (EACCES: not
    executable, or a directory), else ``/x: cannot execute: Exec format error``; not Python's ``[Errno 2] ...:
    '/x'``. ENOENT of a file that is there (``path``: the file exec was given, default ``program``) is its
    interpreter's: :func:`missing_interpreter`."""
    name = display_path(program[:80])
    if code == errno.ENOENT:
        return f"{name}: {missing_interpreter(path or program) or 'command not found'}"
    if code == errno.EACCES:
        return f"{name}: permission denied"
    return f"{name}: cannot execute: {os.strerror(code)}"


def missing_interpreter(path: str) -> str | None:
    """What ENOENT from execve of ``path`` means when the file is there (None: it is not, "command not found"):
    its ``#!`` line names an interpreter that is not there, said as bash (before 5.2) and runc say it
    (``bad interpreter /nonexistent/sh: No such file or directory``); else a file the kernel needs to run it is
    missing (an ELF program's loader, the interpreter's own interpreter), said as bash 5.2 says it (``cannot
    execute: required file not found``). QA q11 5: both were "command not found" of a file that is there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return "cannot execute: required file not found" if os.path.isfile(path) else None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # no program: what the kernel's ENOENT said of it stands
        head = os.read(fd, 256)  # the kernel reads as much (BINPRM_BUF_SIZE)
    except OSError:
        head = b""
    finally:
        os.close(fd)
    words = head[2:].split(b"\n", 1)[0].split() if head.startswith(b"#!") else []
    if words and not os.path.exists(words[0]):
        return f"bad interpreter {display_path(os.fsdecode(words[0])[:80])}: No such file or directory"
    return "cannot execute: required file not found"


def trusted_exe(exe: str) -> str:
    """The file to exec for a container's ``exe`` (``_which``'s; a relative one from /, the container's working
    folder), held to model/trust.py's rule each time netlab starts it, as a CNI plugin is at each exec: `up -t
    FILE` checks the file's commands (model/command_trust), but a repair `up --lab L` and up --watch's restarts
    read no file. As root the resolved file, which no one else can swap before the exec. SpawnError (EACCES)
    naming why not; one that cannot be resolved is left to the exec, which says it as a shell would."""
    from netlab.model.trust import program, refusal

    path = os.path.join("/", exe)
    try:
        real, why = program(path)
    except OSError:
        return exe
    if why is not None:
        raise SpawnError(errno.EACCES, f"{exe}: {refusal(why, 'it')}")
    return real


def spawn(argv: Sequence[str], *, netns: str, uts_path: str | None, log_path: str | int,
          env: Mapping[str, str], replace: int | None = None) -> tuple[ProcId, int | None]:
    """Start ``argv`` in a pod's namespaces, detached; returns its identity and a pidfd of it (None if the
    kernel gave none), the caller's to close.

    The intermediate child that forks the container opens the pidfd and reads
    the start time while the container is still its child, unreaped: both
    name the container even when it has exited at once (``true``), and the
    pidfd then tells how (kernel/pidfd.py). Raises SpawnError (an OSError)
    when the command cannot be executed.

    ``replace``: a pidfd of the process this one takes over from (the cluster DNS's dnsmasq, whose port 53 the
    new one binds: two cannot hold it). The container stops it (:func:`stop_then_exec`) in its last step before
    the exec, all else done (namespaces entered, mounts made, descriptors closed), so the port is closed for the
    old process's exit, the exec and the new one's start only.
    """
    exe = trusted_exe(_which(argv[0], env))  # before anything is opened: refused, nothing to undo
    net_fd = nsmod.open_fd(netns)
    uts_fd = os.open(uts_path, os.O_RDONLY | os.O_CLOEXEC) if uts_path else None
    log_fd = (os.dup(log_path) if isinstance(log_path, int)  # opened by the caller (workload/containers.open_log)
              else os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    envb = {k.encode(): v.encode() for k, v in env.items()}
    try:
        with ours, theirs:
            pid, start, failure = run_in_child(
                _detach, (exe, list(argv), envb, net_fd, uts_fd, log_fd, null_fd, netns, theirs.fileno(), replace),
                timeout=EXEC_WAIT + 5, what=f"the launcher of {argv[0]}")
            ours.setblocking(False)
            try:
                _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, 1)
            except BlockingIOError:
                fds = []
    except ChildError as exc:
        raise SpawnError(errno.ECHILD, f"could not start {argv[0]}: {exc}") from None
    finally:
        for fd in (net_fd, uts_fd, log_fd, null_fd):
            if fd is not None:
                os.close(fd)
    if failure is not None:
        for fd in fds:
            os.close(fd)
        raise SpawnError(*failure)
    return ProcId(pid, start), (fds[0] if fds else None)


def stop_then_exec(pidfd: int, grace: float = STOP_GRACE) -> None:
    """In a container about to exec: SIGTERM (and SIGCONT) the process of ``pidfd``, SIGKILL it after ``grace``
    seconds, and return once it has exited (a pidfd is readable then), or after as long again."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not kill.send(pidfd, sig):
            return
        if readable(pidfd, grace):
            return


def _detach(exe: str, args: list[str], envb: dict[bytes, bytes], net_fd: int, uts_fd: int | None, log_fd: int,
            null_fd: int, netns: str, pidfd_to: int, replace: int | None = None
            ) -> tuple[int, int, tuple[int, str] | None]:
    """In the intermediate child: a session of its own, then fork the container.

    Returns the container's pid and start time, and (errno, why) when it could
    not exec (None when it did, or was still on its way at EXEC_WAIT). A pidfd
    of the container goes back on the socket ``pidfd_to``.
    """
    os.setsid()
    report_r, report_w = os.pipe2(os.O_CLOEXEC)  # closes on a successful exec
    pid = os.fork()
    if pid == 0:  # the container
        execing = False
        try:
            os.setsid()  # a session of its own, its pid: every process it starts is found by it (stopping.py)
            enter_pod_here(net_fd, uts_fd, netns)
            os.chdir("/")
            os.dup2(null_fd, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            keep = sorted({report_w} | ({replace} if replace is not None else set()))
            for low, high in zip([2, *keep], [*keep, 1 << 16]):
                os.closerange(low + 1, high)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            default_signals()
            nofile.as_given()  # the open-files limit netlab was given, not the one it raised for itself
            os.umask(CONTAINER_UMASK)
            if replace is not None:
                stop_then_exec(replace)  # the pidfd is close-on-exec: the command does not inherit it
            execing = True
            os.execve(exe, args, envb)
        except BaseException as exc:  # noqa: BLE001 - report anything, then die
            code = getattr(exc, "errno", 0) or 0
            why = exec_failed(args[0], code, exe) if execing and code else str(exc)
            try:
                os.write(report_w, b"%d %s" % (code, why.encode(errors="replace")[:200]))
            finally:
                os._exit(127)
    os.close(report_w)
    try:
        fd = os.pidfd_open(pid)  # our child, not reaped yet: this very process, exited or not
        try:
            with socket.socket(fileno=os.dup(pidfd_to)) as back:
                socket.send_fds(back, [b"p"], [fd])
        finally:
            os.close(fd)
    except OSError:
        pass  # no pidfd (a kernel before 5.3): nobody will know how it exited
    data = b""
    deadline = time.monotonic() + EXEC_WAIT
    try:
        while (left := deadline - time.monotonic()) > 0 and readable(report_r, left):
            chunk = os.read(report_r, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(report_r)
    start = start_time(pid) or 0  # our child, not reaped: /proc still has it, exited or not
    if not data:
        return pid, start, None
    code, _, why = data.decode(errors="replace").partition(" ")
    return pid, start, (int(code) if code.isdigit() else 0, why)
