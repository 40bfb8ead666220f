"""A plugin's process and the signals around it (cni/invoke.py runs the call, its conf written with SIGPIPE held:
kernel/sigpipe.py): its process group killed at a deadline before its leader is reaped, while the group's id is
still the plugin's."""

from __future__ import annotations

import os
import signal
import subprocess


def kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """The plugin and whatever it started (a shell's children hold its stdout open). The group is signalled
    before its leader is reaped: a leader not reaped yet (running, or a zombie) keeps its pid, the group's id,
    from any other process; once reaped, that id may be a new process group's (a leader already reaped is
    not signalled through it, nor one another thread's waitpid(-1), or SIGCHLD ignored, took)."""
    if proc.returncode is None and unreaped(proc.pid):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def unreaped(pid: int) -> bool:
    """Whether ``pid`` is still this process's child, not reaped (running, or a zombie)."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def exit_unreaped(proc: "subprocess.Popen[bytes]") -> int | None:
    """The plugin's exit status as Popen.returncode gives it (-N: killed by signal N), None while it runs; the
    plugin is not reaped (its group is killed after this: :func:`kill_group`)."""
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped by another's waitpid(-1) (or SIGCHLD ignored): its status is lost
        return None
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
