"""An ``up`` killed while its echo server starts, then ``down``: the server's socket and log never land in the lab's
folder as ``down`` removes it (a folder left with them and no mark is no lab's: every later ``up`` refused it)."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from netlab import lockfile
from netlab.kernel import kill, processes
from netlab.api.lab import Lab
from netlab.realize import lab_folder, state_dir, tags
from netlab.realize.lab_lock import LabLock
from netlab.realize.state import LabState

pytestmark = pytest.mark.root


def _killed_up(lab: str, channel: socket.socket) -> None:
    """In a forked child, the ``up``: it holds the lab, launches its echo server (stopped before it forks the
    server), hands the server's report pipe to the test, and is SIGKILLed."""
    from netlab.workload import launch
    try:
        with LabLock(lab, "netlab up"):
            state_dir.lab_dir(lab)
            LabState(lab=lab, extra={tags.FOLDER_RECORD: tags.folder_record()}).save()  # up's first write
            launcher = launch.start_launcher(launch.control_path(lab), launch.server_log(lab))
            os.kill(launcher.pid, signal.SIGSTOP)
            launch.send_specs(launcher, [])
            assert launcher.stdout
            socket.send_fds(channel, [str(launcher.pid).encode()], [launcher.stdout.fileno()])
            os.kill(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(1)


def test_down_after_an_up_killed_as_its_echo_server_starts(labs, monkeypatch):
    lab = labs.name("er")
    ours, theirs = socket.socketpair()
    child = os.fork()
    if child == 0:
        ours.close()
        _killed_up(lab, theirs)
    theirs.close()
    msg, fds, _flags, _addr = socket.recv_fds(ours, 64, 1)
    ours.close()
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    launcher, report = int(msg), os.fdopen(fds[0], "rb")
    said: list[bytes] = []

    def server_started() -> None:
        """The stopped launcher goes on: it forks the server, which listens (or fails), says so and closes."""
        if not said:
            os.kill(launcher, signal.SIGCONT)
            said.append(report.read())  # to the end: the launcher's and the server's lines

    real_unlink = os.unlink

    def unlink(path, *args, dir_fd=None, **kw):
        if path == lab_folder.MARK_FILE and dir_fd is not None:
            server_started()  # the server starts as down forgets the lab: the moment its folder is emptied
        return real_unlink(path, *args, dir_fd=dir_fd, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(lockfile, "tell", lambda text: server_started())  # down waits for the lab: let it start
    try:
        Lab(lab).down(wait=30.0)  # in-process, at once: as the fault sweep's down once did
    finally:
        monkeypatch.undo()
        server_started()
        server = [int(line.split()[1]) for line in said[0].decode().splitlines() if line.startswith("S ")]
        kill.terminate(server, processes.running)
        report.close()
    path = os.path.join(state_dir.STATE_ROOT, lab)
    names = sorted(os.listdir(path)) if os.path.lexists(path) else []
    assert not names and not os.path.lexists(path), f"down left {path} holding {names}"
    assert lab_folder.not_ours(path) is None  # the next up of the lab may make it again
