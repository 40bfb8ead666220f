"""`netlab list` and `netlab status` (real processes) of a lab another command holds, as `up` holds it: the test
takes the lab's lock (lab_lock.LabLock, "netlab up") and writes its state as an up at work does.

QA saw, with CI jobs side by side: `list` calling an up at work "killed" or its lab "lost", and `status` reporting
the up's work half done as drift (exit 1) without naming it. The races themselves are injected deterministically in
tests/unit/test_list_races.py and test_status_while_changed.py; here the real lock is met across processes.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import ip, lab_namespaces, netlab
from netlab.realize import lab_lock
from netlab.realize.state import load_state

pytestmark = pytest.mark.root


def test_list_and_status_name_the_up_holding_the_lab(labs):
    lab = labs.name("cc")
    path, _ = labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n")
    me = f"pid {os.getpid()} (netlab up)"
    with lab_lock.LabLock(lab, "netlab up"):
        state = load_state(lab)
        assert state is not None
        state.phase = "creating"  # an up at work on the lab, as its write-ahead says
        state.save()
        ip("netns", "del", f"{lab}-b")  # its work half done: a pod's namespace not made yet
        rows = {row["lab"]: row for row in json.loads(netlab("list", "-o", "json").stdout)}
        assert rows[lab]["phase"] == "creating" and rows[lab]["error"] is None, rows[lab]
        got = netlab("status", "--lab", lab, check=False)
        assert (got.returncode, got.stdout) == (3, ""), got
        assert got.stderr.startswith(f"netlab: lab {lab} is being changed by {me} while status read it: "), got.stderr
    # Nobody holds it now and its state says creating: that up ended before it finished, and list says so.
    rows = {row["lab"]: row for row in json.loads(netlab("list", "-o", "json").stdout)}
    assert "ended before it finished (killed)" in str(rows[lab].get("error")), rows[lab]
    got = netlab("status", "--lab", lab, check=False)
    assert got.returncode == 1 and f"missing: namespace {lab}-b" in got.stdout, got  # drift now: nobody at work
    netlab("up", "-t", path)
    assert f"{lab}-b" in lab_namespaces(lab) and netlab("status", "--lab", lab).returncode == 0
