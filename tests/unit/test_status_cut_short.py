"""`status` of a lab whose `down` was killed before it removed anything, or whose `up` was killed at its very end
(QA qa59m 2, the fake kernel, state in a private folder).

Its kernel is as planned, but its state says phase deleting (creating): status said "all as planned", exit 0, and
`-o json` ok true beside an `error` (list's line for it). It is not as a finished `up` left it: ok false, exit 1,
and its text line says so, with what finishes it (`down`; of a killed up, `up --lab L` too, which marks it up).
"""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up
from test_policy_table_netns_gone import killed_down

from netlab.api import lifecycle
from netlab.cli import lab as cli_lab
from netlab.errors import down_command, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.lab import readahead
from netlab.lab.status import StatusResult

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture
def as_planned(lab, monkeypatch):
    """The lab up on the fake kernel; status's read finds nothing different."""
    up(lab, FakeKernel())
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(readahead, "start", lambda *a: types.SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(lifecycle, "status", lambda state, _: StatusResult(lab=state.lab, objects=7))
    return lab


@pytest.mark.parametrize("holder", ["netlab down", "netlab up"])
def test_status_of_a_lab_a_killed_run_left_as_planned_is_not_ok(as_planned, holder):
    said = killed_down("fk", holder)
    got = run_cli("status", "--lab", "fk")
    assert got.returncode == 1 and got.stderr == f"netlab: {said}\n", got
    lines = got.stdout.splitlines()
    assert "all as planned" not in got.stdout and len(lines) == 2, got
    if holder == "netlab down":
        assert lines[0] == "lab fk: 7 objects as planned, but the `netlab down` that was taking it down did not finish"
        assert lines[1] == (f"run `{down_command('fk')}` to finish taking it down, or "
                            f"`{netlab_command('up --lab fk')}` to keep it up")
    else:
        assert lines[0] == "lab fk: 7 objects as planned, but the `netlab up` that was making it did not finish"
        assert lines[1] == (f"run `{netlab_command('up --lab fk')}` to finish it, or `{down_command('fk')}` to take "
                            "away what it made")
    doc = run_cli("status", "--lab", "fk", "-o", "json")
    assert doc.returncode == 1, doc
    data = json.loads(doc.stdout)
    assert (data["ok"], data["error"], data["drift"]) == (False, said, []), data


def test_status_of_a_finished_lab_is_ok(as_planned):
    got = run_cli("status", "--lab", "fk")
    assert (got.returncode, got.stdout) == (0, "lab fk: 7 objects, all as planned\n"), got
