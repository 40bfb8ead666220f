"""Commands of a lab whose `up` was killed (SIGKILL) before its first state write (root; QA qa59m 3): `list` shows
it `interrupted`, with a line that a plain `down` removes its folder. status, get, probe, exec, logs, up --lab and
impair said "lab 'L' is not up (labs up: ...)", exit 2, as of a lab never made; they say list's line now, exit 2.
The fake kernel's cases: tests/unit/test_interrupted_up_commands.py.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import lab_down, lab_namespaces, netlab, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1}}
"""


def test_commands_of_a_lab_an_up_killed_before_its_first_state_write_say_lists_line(tmp_path):
    lab = unique_lab("cri")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        r = netlab("up", "-t", path, check=False,  # its first state write about to begin: its folder and lock alone
                   env={"NETLAB_FAULT_POINT": "state-write", "NETLAB_FAULT_MODE": "kill"})
        assert r.returncode == -9 and os.path.isdir(state_path(lab)) and lab_namespaces(lab) == [], r
        (row,) = [row for row in json.loads(netlab("list", "-o", "json").stdout) if row["lab"] == lab]
        assert row["phase"] == "interrupted" and row["error"].endswith(f"down --lab {lab}` removes it"), row
        for args in (("status",), ("get", "pods"), ("probe",), ("exec", "a", "--", "true"), ("logs", "a"), ("up",),
                     ("impair", "a:eth0", "--delay", "10ms")):
            r = netlab(args[0], "--lab", lab, *args[1:], check=False)
            assert (r.returncode, r.stdout, r.stderr) == (2, "", f"netlab: {row['error']}\n"), r
        netlab("down", "--lab", lab)
        assert not os.path.lexists(state_path(lab))
    finally:
        lab_down(lab)
