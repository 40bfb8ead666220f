"""netlab's echo server in real pods (root): how it is launched, what it answers, and its running state."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from helpers import in_netns, netlab, two_node_topology

pytestmark = pytest.mark.root

LAUNCHES = 40  # a 1-in-6 race survives 40 launches with probability (5/6)**40 < 0.1 %


def wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_every_launched_echo_server_is_recorded(labs, tmp_path):
    """The launcher (echo.py --spawn) and its children report on one pipe; up must learn every child's pid.

    A child that listened and said so before its launcher had written the child's pid was once
    left unrecorded (the reader stopped at the last "ready" and closed the pipe, the launcher died
    of a broken pipe): `up` reported a failure, and every later `up` met "Address already in use".
    """
    from netlab.workload import lifecycle, processes

    lab = labs.name("ec")
    labs.up(two_node_topology(lab, pods_per_node=1))
    netns = f"{lab}-fedora-1"
    failures = []
    t0 = time.monotonic()
    for i in range(LAUNCHES):
        # Four containers per launch, as `up` launches every new pod's echo server at once: the
        # last child's "ready" and the launcher's last pid report are the two that race.
        names = [f"race{i}x{k}" for k in range(4)]
        specs = [{"id": f"fedora-1/{c}", "pod": "fedora-1", "netns": netns, "netns_path": processes.netns_path(netns),
                  "uts": None, "log": str(tmp_path / f"{c}.log"), "ports": [[9100 + k, "TCP"]],
                  "env": {"PATH": lifecycle.CONTAINER_PATH}} for k, c in enumerate(names)]
        pods = {"fedora-1": {"containers": {c: {} for c in names}}}
        problems = lifecycle._await_echo(lifecycle._launch_echo(specs), specs, pods)
        recs = pods["fedora-1"]["containers"]
        started = [processes.ProcId(r["pid"], r["start"]) for r in recs.values() if "pid" in r]
        if problems or len(started) != len(names) or not all(processes.alive(p) for p in started):
            failures.append((i, problems, recs))
        # Stop them (the recorded ones; the lab's down stops any other), so the next launch can listen.
        processes.terminate([p.pid for p in started],
                            lambda pid: any(p.pid == pid and processes.alive(p) for p in started))
        if failures:
            break
    assert not failures, failures
    assert time.monotonic() - t0 < 90


def _records(lab: str) -> dict:
    from netlab.realize.state import STATE_ROOT

    with open(os.path.join(STATE_ROOT, lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]


def _state_letter(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _tcp_echo(lab: str, src: str, dst: str, port: int = 8080) -> str:
    """The first line a TCP client in SRC reads from DST:PORT (empty on failure)."""
    code = ("import socket\n"
            f"s = socket.create_connection(({dst!r}, {port}), timeout=2)\n"
            "print(s.makefile().readline().strip())\n")
    return in_netns(f"{lab}-{src}", sys.executable, "-c", code).stdout.strip()


def test_a_stopped_container_is_drift_and_up_restarts_it(labs):
    """A SIGSTOPped process still exists, but serves nothing: the lab's containers are not running as planned."""
    lab = labs.name("ec")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1) + """  - name: duo
    node: minikube
    ip: 10.244.0.9
    containers:
      - name: web
      - name: idle
        command: [sleep, infinity]
""")
    assert '"pod": "duo"' in _tcp_echo(lab, "fedora-2", "10.244.0.9")
    before = {c: r["pid"] for c, r in _records(lab)["duo"]["containers"].items()}
    for pid in before.values():
        os.kill(pid, signal.SIGSTOP)
    for pid in before.values():
        assert wait_for(lambda: _state_letter(pid) == "T")
    assert _tcp_echo(lab, "fedora-2", "10.244.0.9") == ""  # connects (the kernel accepts), no reply

    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    for c in ("web", "idle"):
        assert f"pod duo container {c} is stopped" in status.stdout, status.stdout

    netlab("up", "-t", path)
    after = {c: r["pid"] for c, r in _records(lab)["duo"]["containers"].items()}
    for c, pid in before.items():
        assert after[c] != pid
        assert wait_for(lambda: _state_letter(pid) is None)  # the stopped one is gone, not left behind
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    assert '"pod": "duo"' in _tcp_echo(lab, "fedora-2", "10.244.0.9")
