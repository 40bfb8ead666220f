"""An ``up`` of a fresh lab that fails on its own (here: an injected fault once its command containers started) while
the echo server it launched early has not bound its control socket yet: the rollback found no server (``stop_server``
finds one by what listens on ``echo.sock``, and nothing listened yet), and the server lived on, to make its socket
in a lab folder the rollback removed, or serve nothing in namespaces deleted under it. The blind spot a ``down``
after a killed ``up`` had (test_echo_start_down.py), closed there by the lab's lock the starting server shares; an
``up``'s own rollback holds that lock itself, and stops the server its launcher named instead.

The server is held before it binds by its log: a FIFO nobody reads yet, which its open waits on.
"""

from __future__ import annotations

import os

import pytest

from netlab.api.lab import Lab
from netlab.errors import NetlabError
from netlab.kernel import kill, processes, testhooks
from netlab.workload import launch

pytestmark = pytest.mark.root


def _opening(path: str) -> list[int]:
    """The processes started with ``path`` on their command line (the lab's echo server and its launcher)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if path.encode() in fh.read().split(b"\0"):
                    found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


def test_an_up_that_fails_before_its_echo_server_listens_stops_that_server(labs, monkeypatch, tmp_path):
    lab = labs.name("ef")
    fifo = str(tmp_path / "echo.log")
    os.mkfifo(fifo)
    server_log = launch.server_log
    monkeypatch.setattr(launch, "server_log", lambda name: fifo if name == lab else server_log(name))
    monkeypatch.setattr(testhooks, "FAULT_POINT", "containers-started")
    monkeypatch.setattr(testhooks, "FAULT_MODE", "fail")
    topology = {"name": lab, "nodes": [{"name": "n1"}],
                "pods": [{"name": "a", "node": "n1", "containers": [{"name": "main", "command": ["sleep", "infinity"]}]},
                         {"name": "b", "node": "n1"}]}  # b: an echo container, served by the server launched early
    try:
        with pytest.raises(NetlabError, match="injected fault at containers-started"):
            Lab.up(topology)
        left = _opening(fifo)
        assert left == [], f"the rolled back up left its echo server starting: pid {left}"
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a server left waiting on it goes on, and is stopped
        try:
            kill.terminate(_opening(fifo), processes.running)
        finally:
            os.close(reader)
