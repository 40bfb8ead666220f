"""`down --force` of a lab whose state file is corrupt, killed (SIGKILL) halfway (root; QA qa59m 1).

It saved its stand-in state (a new random run id, an empty topology, phase deleting) in the lab's place: `list`
then said a plain `down` finishes it, and that `down` left every namespace ("exists but is not this lab's" each),
said the lab was down and forgot the state (the lab lost); `up --lab` ended in a pydantic traceback. A stand-in is
never saved now: the killed run leaves the lab's state as it was, and every command's way out is `down --force`,
which finishes it. The fake kernel's cases: tests/unit/test_force_down_killed.py.
"""

from __future__ import annotations

import json

import pytest

from helpers import lab_down, lab_namespaces, netlab, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, containers: [{{name: main, command: [sleep, infinity]}}]}}
  - {{name: b, node: n1}}
"""


def test_a_killed_force_down_leaves_the_corrupt_state_and_force_down_finishes_it(tmp_path):
    lab = unique_lab("crf")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        names = lab_namespaces(lab)
        with open(state_path(lab, "state.json"), "w") as fh:
            fh.write("junk")
        r = netlab("down", "--lab", lab, "--force", check=False,
                   env={"NETLAB_FAULT_POINT": "down-stopped", "NETLAB_FAULT_MODE": "kill"})
        assert r.returncode == -9, r  # its containers stopped, no namespace deleted yet
        with open(state_path(lab, "state.json")) as fh:
            assert fh.read() == "junk"  # no stand-in in the state's place
        (row,) = [row for row in json.loads(netlab("list", "-o", "json").stdout) if row["lab"] == lab]
        assert row["phase"] == "corrupt" and f"down --lab {lab} --force" in row["error"], row
        for args in (("down", "--lab", lab), ("up", "--lab", lab), ("status", "--lab", lab)):
            r = netlab(*args, check=False)
            assert r.returncode == 3 and r.stderr.count("\n") == 1, r
            assert "is corrupt" in r.stderr and f"down --lab {lab} --force" in r.stderr, r
        assert lab_namespaces(lab) == names  # nothing taken, nothing forgotten
        r = netlab("down", "--lab", lab, "--force")
        assert lab_namespaces(lab) == [] and r.stdout.startswith(f"lab {lab} is down ({len(names)} namespaces"), r
        assert not any(row["lab"] == lab for row in json.loads(netlab("list", "-o", "json").stdout))
    finally:
        netlab("down", "--lab", lab, "--force", check=False)
        lab_down(lab)
