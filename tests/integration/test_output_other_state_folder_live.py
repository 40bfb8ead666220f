"""An output file is never written into another state folder of a lab up on this machine (root; QA q47 2).

`netlab list` shows a lab up with another NETLAB_STATE_DIR as `elsewhere`, naming its folder (its pins' tmpfs is
mounted there), yet `graph -w` and `probe --junit` of another state folder overwrote that lab's state file (its
`status` then said it corrupt). Now that folder is refused as the current one is: one line, exit 2, nothing written.
"""

from __future__ import annotations

import os

import pytest

from helpers import lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_graph_w_into_a_lab_up_with_another_state_folder_is_refused(tmp_path):
    other = tmp_path / "state2"
    other.mkdir(mode=0o700)
    env = {"NETLAB_STATE_DIR": str(other)}
    lab = unique_lab("sf")
    path = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    try:
        netlab("up", "-t", path, env=env)
        state = other / lab / "state.json"
        before = state.read_bytes()
        listed = netlab("list", check=False)  # this run's state folder: the lab is up elsewhere, in `other`
        assert str(other) in listed.stdout + listed.stderr, listed
        for args in (["graph", "-t", path, "-w", str(state)], ["graph", "-t", path, "-w", str(other / lab / "lock")]):
            proc = netlab(*args, check=False)
            target = args[-1]
            assert proc.returncode == 2 and proc.stderr.splitlines() == [
                f"netlab: cannot write {target}: it is inside {other}, netlab's state directory, and would overwrite "
                "what keeps the labs running; write it somewhere else"], proc
        assert state.read_bytes() == before
        assert netlab("status", "--lab", lab, env=env, check=False).returncode == 0
    finally:
        netlab("down", "--lab", lab, env=env, check=False)
        if lab_namespaces(lab):  # its state overwritten (without the fix): by its namespaces' tags
            netlab("down", "--lab", lab, "--force", env=env, check=False)
    assert lab_namespaces(lab) == [] and not os.path.exists(other / lab)
