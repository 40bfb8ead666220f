"""The lab's echo server's control socket (echocontrol.py) with a peer that sends part of a request and waits,
without root: the server's loop (echoserver.serve) run from this checkout, in a thread of the test.

The server read one peer's request at a time, up to 10 s each: one client of echo.sock that connected, sent `{`
and waited held every `up`, `status` and `down` of the lab, and their requests went unanswered (an `up` then
replaced the server, and every pod's echo container with it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest

from netlab.workload import echocontrol, echoserver, launch


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The echo server's loop with no echo container, its control socket on tmp_path; ends when it is removed."""
    control = str(tmp_path / "echo.sock")
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: control)
    monkeypatch.setattr(launch, "CONTROL_TIMEOUT", 3.0)
    monkeypatch.setattr(echoserver, "CONTROL_WAIT", 60.0)  # it stays up for the test, with nothing to serve
    monkeypatch.setattr(echoserver, "WATCH_SECONDS", 0.1)  # it sees its control socket removed at once
    report_r, report_w = os.pipe()
    loop = threading.Thread(target=echoserver.serve, args=([], report_w, control), daemon=True)
    loop.start()
    with os.fdopen(report_r, "rb") as report:
        assert report.read() == f"S {os.getpid()}\n".encode()  # listening
    yield control
    os.unlink(control)
    loop.join(10)
    threading.stack_size(0)  # serve() set its own for its containers' threads
    assert not loop.is_alive()


def partial(control: str) -> socket.socket:
    """A peer that sends the start of a request and waits."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(control)
    s.sendall(b"{")
    return s


def test_a_peer_that_sends_part_of_a_request_holds_no_other_peers_request(server, monkeypatch):
    monkeypatch.setattr(echocontrol, "REQUEST_WAIT", 60.0)  # the slow peers stay, pending, all along
    slow = [partial(server) for _ in range(3)]
    try:
        for _ in range(2):
            answer = launch.ask("t", {"op": "hello"})
            assert answer is not None and answer.server == os.getpid(), answer
            assert launch.ask("t", {"op": "remove", "ids": ["p/main"]}) is not None
    finally:
        for s in slow:
            s.close()


def test_a_peer_that_never_ends_its_request_is_dropped_unanswered(server, monkeypatch, capsys):
    monkeypatch.setattr(echocontrol, "REQUEST_WAIT", 0.2)
    with partial(server) as slow:
        slow.settimeout(10.0)
        assert slow.recv(100) == b""  # closed by the server, no answer
    assert "echo: control peer dropped: no whole request within 0.2 s" in capsys.readouterr().err
    assert launch.ask("t", {"op": "hello"}) is not None


def test_a_request_that_comes_in_parts_within_its_deadline_is_answered_and_its_pidfd_held(server):
    child = subprocess.Popen(["sleep", "30"])
    fd = os.pidfd_open(child.pid)
    try:
        request = f'{{"op": "hold", "items": [{{"id": "p/cmd", "pid": {child.pid}, "start": 1}}]}}'.encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(server)
            socket.send_fds(s, [request[:1]], [fd])
            s.sendall(request[1:20])
            threading.Event().wait(0.05)  # another write, later: read as it comes
            s.sendall(request[20:])
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10.0)
            assert s.recv(100) == b"K p/cmd\nOK\n"
        assert launch.ask("t", {"op": "remove", "ids": ["p/cmd"]}) is not None  # it lets go of the pidfd
    finally:
        os.close(fd)
        child.kill()
        child.wait()
