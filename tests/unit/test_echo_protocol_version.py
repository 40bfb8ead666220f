"""The echo server's control protocol has a number (echocontrol.PROTOCOL), asked with ``version``, without root:
the server's loop (echoserver.serve) run from this checkout in a thread of the test.

An echo server started by an older netlab (a lab left up across an upgrade) answered the questions it knew and
``? unknown request`` to the newer ones (kube-proxy's health checks): ``status`` said the checks were not served and
``up`` asked again, for good. Such a server is now told from this netlab's (it does not know the version
question: echocontrol.UNVERSIONED), not taken for a dead or a silent one; status names it (health.drift).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading

import pytest

from netlab.workload import echo_upgrade, echocontrol, echoserver, health, launch
from netlab.workload.echocontrol import PROTOCOL, UNVERSIONED

# What a server of the netlab before the protocol had a number knew (netlab 9416a045 and older: some of them).
OLD_OPS = {"add", "remove", "hold", "exits", "health", "health?", "hello"}


def old_answer(answer):
    """Control.answer as a server of an older netlab answers: the requests it knew, and any other one as every
    server since the first did (echocontrol.Control.answer's last branch, netlab 83ad697b to 9416a045)."""
    def answering(self, conn, data, fds):
        try:
            op = json.loads(data or b"{}").get("op")
        except (ValueError, AttributeError):
            op = None
        if not data or op in OLD_OPS:
            return answer(self, conn, data, fds)
        for fd in fds:
            os.close(fd)
        conn.settimeout(1.0)
        conn.sendall(f"? unknown request {str(op)[:40]!r}\nOK\n".encode())
    return answering


@pytest.fixture
def control(tmp_path, monkeypatch):
    path = str(tmp_path / "echo.sock")
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: path)
    monkeypatch.setattr(launch, "CONTROL_TIMEOUT", 3.0)
    return path


def run_server(control, monkeypatch):
    """The echo server's loop with no echo container, on ``control``; stopped by removing it (the caller's)."""
    monkeypatch.setattr(echoserver, "CONTROL_WAIT", 60.0)  # it stays up for the test, with nothing to serve
    monkeypatch.setattr(echoserver, "WATCH_SECONDS", 0.1)  # it sees its control socket removed at once
    report_r, report_w = os.pipe()
    loop = threading.Thread(target=echoserver.serve, args=([], report_w, control), daemon=True)
    loop.start()
    with os.fdopen(report_r, "rb") as report:
        assert report.read() == f"S {os.getpid()}\n".encode()  # listening
    return loop


@pytest.fixture
def server(control, monkeypatch):
    loop = run_server(control, monkeypatch)
    yield control
    stop(control, loop)


@pytest.fixture
def old_server(control, monkeypatch):
    monkeypatch.setattr(echocontrol.Control, "answer", old_answer(echocontrol.Control.answer))
    loop = run_server(control, monkeypatch)
    yield control
    stop(control, loop)


def stop(control, loop):
    os.unlink(control)
    loop.join(10)
    threading.stack_size(0)  # serve() set its own for its containers' threads
    assert not loop.is_alive()


def lab():
    from netlab.model.lab import resolve
    from netlab.model.load import parse_yaml, validate_source

    return resolve(validate_source(parse_yaml("name: t\nnodes: [{name: n1}]\n", "t.yaml")))


HEALTH_NOT_SERVED = ("kube-proxy: kube-proxy's health server on node n1 (port 10256/TCP: /healthz, /livez) is not "
                     "served; `sudo netlab up` serves it")


def test_the_server_says_its_protocol(server):
    answer = launch.ask("t", {"op": "version"})
    assert answer is not None and answer.version == PROTOCOL and not answer.unknown
    assert launch.protocol("t") == PROTOCOL
    assert echo_upgrade.outdated("t") is None
    assert health.drift(lab(), "sudo netlab up") == [HEALTH_NOT_SERVED]  # asked, as ever: it serves none here


def test_a_server_that_does_not_know_the_question_is_an_older_netlabs(old_server):
    answer = launch.ask("t", {"op": "version"})
    assert answer is not None and answer.complete and answer.version is None
    assert answer.unknown == ["unknown request 'version'"]
    assert launch.protocol("t") == UNVERSIONED < PROTOCOL
    assert echo_upgrade.outdated("t") == echo_upgrade.Outdated(os.getpid(), UNVERSIONED)
    # One line, which says what it is and what to do: not a line per check "not served", which up did not change.
    assert health.drift(lab(), "sudo netlab up -t lab.yaml") == [
        f"kube-proxy: health checks not served: the lab's echo server (pid {os.getpid()}) was started by an older "
        f"netlab (control protocol 1; this netlab's is {PROTOCOL}), which does not know this netlab's questions; "
        "`sudo netlab up -t lab.yaml` replaces it, its pods' echo containers served on"]


def test_a_server_that_does_not_answer_is_not_taken_for_an_old_one(control, monkeypatch):
    """One that listens and never answers (busy, hung) is not known to be another netlab's: not replaced for it,
    and status asks it once (it waited for the health checks' answer on top)."""
    monkeypatch.setattr(launch, "CONTROL_TIMEOUT", 0.3)
    asked: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(control)
        mute.listen(8)

        def take() -> None:
            while True:
                try:
                    conn, _ = mute.accept()
                except OSError:
                    return
                with conn:
                    data = b"".join(iter(lambda: conn.recv(4096), b""))  # to the peer's end of writing, or close
                    if data:
                        asked.append(data)

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert launch.server_pid("t") == os.getpid()
        assert launch.protocol("t") is None
        assert echo_upgrade.outdated("t") is None
        asked.clear()
        assert health.drift(lab(), "sudo netlab up") == [f"kube-proxy: health checks not served: {health.NO_ANSWER}"]
        assert [json.loads(a)["op"] for a in asked] == ["version"]
        mute.shutdown(socket.SHUT_RDWR)
    taker.join(5)
    os.unlink(control)
    assert launch.protocol("t") is None and echo_upgrade.outdated("t") is None  # none at all


def test_every_request_of_the_protocol_is_known_and_numbered(server):
    """Each op of OPS is answered (no ``?``), any other is not; and the ops the server dispatches are exactly
    OPS, whose set at PROTOCOL is pinned here: a request added (or changed) makes PROTOCOL one more, so that
    a server of the netlab before is told from this one's and replaced by up."""
    for op in echocontrol.OPS:
        answer = launch.ask("t", {"op": op})
        assert answer is not None and answer.complete and not answer.unknown, op
    answer = launch.ask("t", {"op": "nonesuch"})
    assert answer is not None and answer.unknown == ["unknown request 'nonesuch'"]
    with open(echocontrol.__file__) as f:
        dispatched = set(re.findall(r'\bop == "([^"]+)"', f.read()))
    assert dispatched == set(echocontrol.OPS)
    assert (PROTOCOL, set(echocontrol.OPS) - OLD_OPS) == (2, {"version", "remember"}), \
        "a new request: add one to echocontrol.PROTOCOL and say what it brought beside it"


def test_remembered_exits_are_told_until_the_container_runs_again(server):
    items = [{"id": "p/cmd", "pid": 4242, "start": 99, "status": 1 << 8},
             {"id": "p/main", "pid": 4343, "start": 98, "status": 15},
             {"id": "p/bad", "pid": "x", "start": 1, "status": 0}, "nonsense"]
    answer = launch.ask("t", {"op": "remember", "items": items})
    assert answer is not None and answer.complete
    assert answer.errors == {"p/bad": "not an exit", "None": "not an exit"}
    assert launch.exits("t", ["p/cmd", "p/main", "p/bad"]) == {"p/cmd": (4242, 99, 256), "p/main": (4343, 98, 15)}

    # A new run held: how the one before ended is not its own.
    child = subprocess.Popen(["sleep", "30"])
    fd = os.pidfd_open(child.pid)
    try:
        from netlab.kernel.processes import ProcId, start_time

        p = ProcId(child.pid, start_time(child.pid) or 0)
        assert launch.hold("t", [("p/cmd", p, fd)]) == {"p/cmd"}
        assert launch.exits("t", ["p/cmd", "p/main"]) == {"p/main": (4343, 98, 15)}
        # ... nor is a container it serves or holds now remembered over its run.
        answer = launch.ask("t", {"op": "remember", "items": items[:1]})
        assert answer is not None and answer.complete and answer.errors == {}
        assert launch.exits("t", ["p/cmd"]) == {}
    finally:
        os.close(fd)
        child.kill()
        child.wait()


def test_health_checks_asked_of_an_older_server_are_said_not_served(monkeypatch):
    """An up that did not replace it (a rollback's): the server answered `? unknown request 'health'`, and up said
    nothing, as if it served them."""
    old = launch.Answer()
    old.read("? unknown request 'health'\nOK\n")
    monkeypatch.setattr(health, "_server", lambda name: None)
    monkeypatch.setattr(launch, "ask", lambda *a, **k: old)
    done = health.start(lab(), {})
    assert done.problems == [f"kube-proxy: health checks not served: {health.OLDER}"]
