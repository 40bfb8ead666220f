"""`status` of a lab whose `down` was killed before it removed anything, or whose `up` was killed at its very end
(root; QA qa59m 2): its kernel is as planned, its state not (phase deleting, creating). status said "all as
planned", exit 0, and `-o json` ok true beside list's line as its `error`. Now ok false, exit 1, a line that says
the run did not finish and what finishes it; the fake kernel's cases: tests/unit/test_status_cut_short.py.
"""

from __future__ import annotations

import json

import pytest

from netlab.errors import down_command, netlab_command
from helpers import lab_down, netlab, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1}}
"""


def list_line(lab: str) -> str:
    (row,) = [row for row in json.loads(netlab("list", "-o", "json").stdout) if row["lab"] == lab]
    return row["error"]


def test_status_of_a_lab_left_as_planned_by_a_killed_down_or_up_is_not_ok(tmp_path):
    lab = unique_lab("crs")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        r = netlab("down", "--lab", lab, check=False,  # its first state write in place (phase deleting), no more
                   env={"NETLAB_FAULT_POINT": "state-renamed", "NETLAB_FAULT_MODE": "kill"})
        assert r.returncode == -9, r
        for finish, words in ((f"run `{down_command(lab)}` to finish taking it down, or "
                               f"`{netlab_command(f'up -t {path}')}` to keep it up", "the `netlab down` that was "
                               "taking it down"),
                              (f"run `{netlab_command(f'up --lab {lab}')}` to finish it, or `{down_command(lab)}` to "
                               "take away what it made", "the `netlab up` that was making it")):
            line = list_line(lab)
            r = netlab("status", "--lab", lab, check=False)
            assert r.returncode == 1 and r.stderr == f"netlab: {line}\n", r
            first, last = r.stdout.splitlines()
            assert first.endswith(f"objects as planned, but {words} did not finish") and last == finish, r
            doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
            assert (doc["ok"], doc["error"], doc["drift"]) == (False, line, []), doc
            with open(state_path(lab, "state.json")) as fh:  # an up killed at its very end: phase creating
                data = json.load(fh)
            data["phase"] = "creating"
            with open(state_path(lab, "state.json"), "w") as fh:
                json.dump(data, fh)
        netlab("up", "--lab", lab)  # the up it names finishes it
        r = netlab("status", "--lab", lab)
        assert r.stdout.endswith("all as planned\n") and r.stderr == "", r
    finally:
        lab_down(lab)


SIDE = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: a
    node: n1
    containers: [{{name: main, command: [sleep, "3600"]}}, {{name: side, command: [sleep, "3601"]}}]
"""


def test_a_converge_killed_as_its_write_ahead_was_renamed_is_said_killed_naming_what_it_left(tmp_path):
    """QA lf61 2: an `up` of an edited file (a container taken out) killed once its first state write was in place:
    the state asked the edited topology in phase up, so list said nothing, status "all as planned", and the
    container the edit took out ran on, named nowhere. Now list and status say the up was killed, what it left
    unfinished and that `up --lab L` finishes it; that up stops the container and the line goes."""
    lab = unique_lab("crs")
    path = write_topology(tmp_path, SIDE.format(lab=lab))
    try:
        netlab("up", "-t", path)
        write_topology(tmp_path, SIDE.format(lab=lab).replace(', {name: side, command: [sleep, "3601"]}', ""))
        r = netlab("up", "-t", path, check=False,
                   env={"NETLAB_FAULT_POINT": "state-renamed", "NETLAB_FAULT_MODE": "kill"})
        assert r.returncode == -9, r
        line = list_line(lab)
        assert line is not None and line.startswith(f"lab {lab}: the `netlab up` that was changing it (pid "), line
        assert line.endswith(") ended before it finished (killed), so the lab may not be as its state asks "
                             f"(unfinished: container a/side taken out (its process may still run)); "
                             f"`{netlab_command(f'up --lab {lab}')}` finishes it"), line
        r = netlab("status", "--lab", lab, check=False)
        assert r.returncode == 1 and r.stderr == f"netlab: {line}\n", r
        assert r.stdout.splitlines()[0].endswith("objects as planned, but the `netlab up` that was changing it did "
                                                 "not finish"), r
        doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
        assert (doc["ok"], doc["error"]) == (False, line), doc
        up = netlab("up", "--lab", lab).stdout
        assert "stopped container a/side (no longer in the topology)" in up, up
        assert list_line(lab) is None
        r = netlab("status", "--lab", lab)
        assert r.stdout.endswith("all as planned\n") and r.stderr == "", r
        # a converge that finishes, or changes nothing, leaves no such line
        assert "nothing to change" in netlab("up", "-t", path).stdout and list_line(lab) is None
    finally:
        lab_down(lab)
