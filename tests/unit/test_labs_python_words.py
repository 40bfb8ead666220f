"""netlab.labs() (api/running.labs: `netlab list` from Python) says each lab's way out as the Python call, as every
Lab method does (errors.python_words): its rows' `error` named the CLI's commands (`sudo netlab down --lab L`)
beside Status.error's `Lab('L').down()`. `netlab list` keeps the commands."""

from __future__ import annotations

import os

import pytest
from cli_inprocess import run_cli

from netlab.errors import down_command, netlab_command
from netlab.api.running import labs
from netlab.cli import lab as cli_lab
from netlab.realize import state_dir
from netlab.realize.state import LabState

DEAD = "pid 4194304 (netlab up)"  # above pid_max's default: nobody


def _lock(lab: str, holder: str = DEAD) -> str:
    path = state_dir.lab_dir(lab)
    with open(os.path.join(path, state_dir.LOCK_FILE), "w") as fh:
        fh.write(holder + "\n")
    return path


def _interrupted() -> None:  # an up killed before its first state write: its folder and lock alone
    _lock("wi")


def _creating() -> None:  # an up killed halfway: phase creating, nobody holds the lock
    LabState(lab="wc", netns={"wc-n1": "intent"}, phase="creating").save()
    _lock("wc")


def _lost() -> None:  # a run's files, no state file
    path = _lock("wl", "pid 12 (netlab status)")
    with open(os.path.join(path, "echo.sock"), "wb"):
        pass


def _corrupt() -> None:
    LabState(lab="wk").save()
    with open(state_dir.state_file("wk"), "w") as fh:
        fh.write("{not json")


def _gone() -> None:  # its state says up, none of its namespaces is there (the unit tests' machine has none)
    LabState(lab="wg", netns={"wg-n1": "created"}, phase="up").save()


CASES = {"wi": (_interrupted, "Lab('wi').down()"), "wc": (_creating, "Lab('wc').down()"),
         "wl": (_lost, "Lab('wl').down(force=True)"), "wk": (_corrupt, "Lab('wk').down(force=True)"),
         "wg": (_gone, "Lab('wg').down()")}


@pytest.mark.parametrize("lab", sorted(CASES))
def test_labs_from_python_says_the_python_call(lab, monkeypatch):
    make, call = CASES[lab]
    make()
    rows = [row for row in labs() if row.lab == lab]
    assert len(rows) == 1 and rows[0].error is not None, rows
    assert call in rows[0].error and "sudo" not in rows[0].error and "netlab down" not in rows[0].error, rows[0].error
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    got = run_cli("list")  # the command keeps the command's words
    if call.endswith("(force=True)"):  # a lost or corrupt state: the --force hint keeps its own words
        assert netlab_command(f"down --lab {lab} --force") in got.stderr, got
    else:
        assert down_command(lab) in got.stderr, got
    assert call not in got.stderr, got


def test_a_gone_lab_from_python_names_its_repair_as_the_call():
    _gone()
    (row,) = labs()
    assert row.error is not None and row.error.endswith(
        "`Lab('wg').down()` forgets it (or `Lab('wg').repair()` makes it again)"), row.error
