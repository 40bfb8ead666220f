"""A lab's control socket (<state folder>/<lab>/echo.sock) whose path is longer than an AF_UNIX address holds.

Linux keeps a socket's path in sun_path: 108 bytes with its NUL. Under a state folder of 73 characters or more
(a 24-character lab name) the echo server could not listen ("AF_UNIX path too long") and every pod's echo
container failed to start; netlab could not have reached a server there either. The socket is now bound and
reached through its folder's descriptor (kernel/unixpath.py), whatever the folder's path. No root: the server's
loop (echoserver.serve) from this checkout, in a thread of the test, as test_echo_control_peers.py runs it.
"""

from __future__ import annotations

import os
import socket
import stat
import threading

import pytest

from netlab.kernel import unixpath
from netlab.workload import echocontrol, echoserver, launch

SUN_PATH = 108  # bytes of struct sockaddr_un's sun_path, its NUL included


@pytest.fixture
def long_control(tmp_path, monkeypatch):
    folder = tmp_path / ("z" * 90) / "sa-a-lab-name-of-24-chars"
    folder.mkdir(parents=True, mode=0o700)
    control = str(folder / "echo.sock")
    assert len(control.encode()) >= SUN_PATH
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: control)
    return control


def test_a_server_listens_on_a_control_socket_past_sun_path_and_netlab_reaches_it(long_control, monkeypatch):
    monkeypatch.setattr(launch, "CONTROL_TIMEOUT", 3.0)
    monkeypatch.setattr(echoserver, "CONTROL_WAIT", 60.0)  # it stays up for the test, with nothing to serve
    monkeypatch.setattr(echoserver, "WATCH_SECONDS", 0.1)  # it sees its control socket removed at once
    report_r, report_w = os.pipe()
    loop = threading.Thread(target=echoserver.serve, args=([], report_w, long_control), daemon=True)
    loop.start()
    try:
        with os.fdopen(report_r, "rb") as report:
            assert report.read() == f"S {os.getpid()}\n".encode()  # listening, not "E ... path too long"
        assert stat.S_ISSOCK(os.lstat(long_control).st_mode)  # at its own path, in the lab's folder
        assert launch.server_pid("t") == os.getpid()  # the peer's credentials: the process listening there
        answer = launch.ask("t", {"op": "hello"})
        assert answer is not None and answer.server == os.getpid(), answer
        with pytest.raises(OSError, match="another echo server answers"):  # a second server is refused
            echocontrol.bind_control(long_control)
    finally:
        if os.path.lexists(long_control):
            os.unlink(long_control)
        loop.join(10)
        threading.stack_size(0)  # serve() set its own for its containers' threads
    assert not loop.is_alive()


def test_a_dead_servers_long_socket_is_replaced_and_a_non_socket_is_refused(long_control):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with unixpath.Folder(long_control) as at:
        dead.bind(at.address)  # nobody listens: a dead server's socket
    dead.close()
    assert launch.server_pid("t") is None
    sock, ino = echocontrol.bind_control(long_control)
    with sock:
        assert os.lstat(long_control).st_ino == ino and echocontrol.still_there(long_control, ino)
    os.unlink(long_control)
    with open(long_control, "w"):
        pass
    with pytest.raises(OSError, match="exists and is not a socket"):
        echocontrol.bind_control(long_control)
    assert launch.server_pid("t") is None


def test_the_folder_is_never_reached_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OSError):
        unixpath.Folder(str(tmp_path / "link" / "echo.sock"))
    with unixpath.Folder(str(real / "echo.sock")) as at:
        assert len(at.address) < 40 and at.address.endswith("/echo.sock")
