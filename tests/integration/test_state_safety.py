"""The lab's saved state under attack and under load (issue 9, sections 3 and 4).

- "one proceeds, the other waits" for real ``up`` and ``down`` racing on one lab;
"""

from __future__ import annotations

import select
import subprocess
import time

import pytest

from helpers import NETLAB, lab_namespaces, netlab, write_topology

pytestmark = pytest.mark.root


def small(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(NETLAB + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(proc: subprocess.Popen, text: bytes, within: float = 20.0) -> bytes:
    """Read the child's stderr until ``text`` shows up (the child keeps running)."""
    import os

    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and text not in seen:
        if select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    assert text in seen, f"never saw {text!r}: {seen!r}"
    return seen


@pytest.mark.parametrize("first", ["down", "up"])
def test_up_and_down_waiting_on_each_other_both_finish(labs, tmp_path, first):
    """Both wait on a lock this test holds, then race for it: whichever wins, neither crashes."""
    from netlab.realize import state

    lab = labs.name("ibl")
    path, _ = labs.up(small(lab))
    commands = {"down": ["down", "--lab", lab], "up": ["up", "-t", path]}
    order = [first, "up" if first == "down" else "down"]
    for _ in range(3):
        netlab("up", "-t", path)
        with state.LabLock(lab, "the test"):
            procs = {}
            for name in order:
                procs[name] = start(*commands[name])
                wait_for_line(procs[name], b"waiting for")
        outs = {name: p.communicate(timeout=120) for name, p in procs.items()}
        for name, p in procs.items():
            assert p.returncode == 0, (name, outs[name][1].decode())
            assert b"Traceback" not in outs[name][1]
        if state.load_state(lab) is None:
            assert lab_namespaces(lab) == []
        else:
            assert netlab("status", "--lab", lab, check=False).returncode == 0
