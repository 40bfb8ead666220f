"""`netlab status` of a lab another command changes while status reads it (api/internals.internal_status,
realize/interrupted.Seen), on the fake kernel's lab, its state in a private folder: the other command's work is
injected while status reads the kernel.

A status run while another job's `up` of the lab was making it reported that up's work half done as drift (exit 1:
"pod client has no containers started"), without naming the up; reliability.md: "One lab, two commands: one
proceeds, the other waits or names the holder".
"""

from __future__ import annotations

import errno
import json
import os
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.errors import down_command
from netlab.errors import python_words
from netlab.api import lifecycle
from netlab.cli import lab as cli_lab
from netlab.kernel.base import KernelError
from netlab.kernel.fake import FakeKernel
from netlab.lab import readahead
from netlab.lab.status import StatusResult
from netlab.lab.teardown import down
from netlab.api.running import labs
from netlab.realize import lab_lock, state as state_mod, state_dir
from netlab.realize.interrupted import stalled

lab = pytest.fixture(make_lab, name="lab")
HALF_DONE = "missing netns fk-b"  # what the kernel shows of an up at work: a pod not made yet
ME = f"pid {os.getpid()} (netlab up)"
CUT = KernelError(None, errno.EIO, "fk-n1: iptables-save failed: exit -15")  # its process stopped by a down  # the test holds the lab as `up` holds it


@pytest.fixture
def status_reading(lab, monkeypatch):
    """`netlab status --lab fk` of the lab up on the fake kernel, whose read of the kernel runs ``during`` first
    and finds HALF_DONE."""
    kernel = FakeKernel()
    up(lab, kernel)
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(readahead, "start", lambda *a: types.SimpleNamespace(close=lambda: None))

    def run(during=lambda: None, fails: Exception | None = None):
        def read(state, _):
            during()
            if fails is not None:
                raise fails
            return StatusResult(lab=state.lab, drift=[HALF_DONE])

        monkeypatch.setattr(lifecycle, "status", read)
        return run_cli("status", "--lab", lab.name)
    return types.SimpleNamespace(run=run, kernel=kernel, name=lab.name)


def test_an_up_holding_the_lab_is_named_not_its_work_said_drift(status_reading):
    with lab_lock.LabLock(status_reading.name, "netlab up"):
        got = status_reading.run()
    assert (got.returncode, got.stdout) == (3, ""), got
    assert got.stderr == (f"netlab: lab fk is being changed by {ME} while status read it: what the kernel showed "
                          "then is its work half done, not drift; run status again once it has finished\n")


def test_an_up_that_finished_while_status_read_is_named(status_reading):
    lock = lab_lock.LabLock(status_reading.name, "netlab up").__enter__()

    def up_ends():
        state_mod.load_state(status_reading.name).save()  # its last write, then it lets the lab go
        lock.__exit__()

    got = status_reading.run(up_ends)
    assert got.returncode == 3 and f"lab fk was being changed by {ME} while status read it" in got.stderr, got


def test_an_up_that_began_and_ended_while_status_read_is_named(status_reading):
    def up_runs():
        with lab_lock.LabLock(status_reading.name, "netlab up"):
            state_mod.load_state(status_reading.name).save()

    got = status_reading.run(up_runs)
    assert got.returncode == 3 and f"lab fk was being changed by {ME} while status read it" in got.stderr, got


def test_a_lab_taken_down_while_status_read_is_said_so(status_reading):
    got = status_reading.run(lambda: down(status_reading.name, status_reading.kernel))
    assert (got.returncode, got.stderr) == (2, "netlab: lab fk was taken down while status read it; it is not up\n")


def test_drift_with_nobody_at_work_is_drift(status_reading):
    got = status_reading.run()
    assert got.returncode == 1 and HALF_DONE in got.stdout and got.stderr == "", got


def test_a_read_a_down_cut_short_is_said_as_the_lab_taken_down(status_reading):
    """down stops every process in the lab's namespaces: the iptables-save a status reader ran in a node was one
    (`iptables-save failed: exit -15`, with a traceback, exit 1)."""
    got = status_reading.run(lambda: down(status_reading.name, status_reading.kernel), fails=CUT)
    assert (got.returncode, got.stderr) == (2, "netlab: lab fk was taken down while status read it; it is not up\n")


def test_a_read_that_fails_with_nobody_at_work_is_said_as_before(status_reading):
    got = status_reading.run(fails=CUT)
    assert got.returncode != 0 and "iptables-save failed: exit -15" in got.stderr + str(got), got
    assert "taken down" not in got.stderr and "being changed" not in got.stderr


@pytest.mark.parametrize("drift", [True, False])
def test_a_lab_whose_up_was_killed_says_so_first_in_lists_words_then_the_drift(status_reading, drift, monkeypatch):
    """QA: status of a lab whose up was killed halfway (phase creating, nobody holds its lock) gave ~100 missing
    objects and `up` as their repair; only `list` said the up was killed and that `down` takes away what it made.
    status says list's line first (realize/interrupted.stalled), then the drift, if any, as before."""
    state = state_mod.load_state(status_reading.name)
    state.phase = "creating"
    state.save()
    with open(os.path.join(state_dir.lab_dir(status_reading.name), state_dir.LOCK_FILE), "w") as fh:
        fh.write("pid 4194304 (netlab up)\n")  # the lock as that up left it: above pid_max's default, nobody
    said = stalled(state)
    with python_words(False):  # list's line, as the command says it
        assert said is not None and said == next(row.error for row in labs() if row.lab == status_reading.name)
    if not drift:  # what the up made so far is all there (killed after its last change)
        monkeypatch.setattr(lifecycle, "status", lambda state, _: StatusResult(lab=state.lab))
    got = status_reading.run() if drift else run_cli("status", "--lab", status_reading.name)
    assert got.stderr.splitlines()[0] == f"netlab: {said}", got
    assert said.endswith(f"`{down_command(status_reading.name)}` takes away what it made")
    if drift:
        assert got.returncode == 1 and HALF_DONE in got.stdout, got
    else:  # as planned, yet not as a finished up leaves it: not "all as planned", exit 1 (QA qa59m 2)
        assert got.returncode == 1 and "did not finish" in got.stdout and "all as planned" not in got.stdout, got


def test_status_json_of_a_lab_whose_up_was_killed_carries_lists_line_as_error(status_reading, monkeypatch):
    """status -o json of that lab held only the drift: the line status prints first was on stderr alone. It is the
    document's `error`, list's key for the same line (docs/json.md); null for a lab nobody left halfway."""
    monkeypatch.setattr(lifecycle, "status", lambda state, _: StatusResult(lab=state.lab))
    clean = run_cli("status", "--lab", status_reading.name, "-o", "json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["error"] is None, clean
    state = state_mod.load_state(status_reading.name)
    state.phase = "creating"
    state.save()
    with open(os.path.join(state_dir.lab_dir(status_reading.name), state_dir.LOCK_FILE), "w") as fh:
        fh.write("pid 4194304 (netlab up)\n")  # the lock as that up left it: nobody
    said = stalled(state)
    got = run_cli("status", "--lab", status_reading.name, "-o", "json")
    assert said is not None and json.loads(got.stdout)["error"] == said, got
    assert json.loads(got.stdout)["ok"] is False and got.returncode == 1, got  # never ok beside an error
    assert got.stderr.splitlines()[0] == f"netlab: {said}", got  # said on stderr too, as before


def test_lab_status_of_a_lab_whose_up_was_killed_says_its_error_in_python_words(status_reading, monkeypatch):
    """QA q17 3: Lab('L').status() of that lab gave Status.error in the CLI's words (`sudo netlab down --lab L`)
    while Status.repair in the same object said `Lab('L').repair()`: both the Python call."""
    from netlab import Lab

    monkeypatch.setattr(lifecycle, "status", lambda state, _: StatusResult(lab=state.lab, drift=[HALF_DONE]))
    state = state_mod.load_state(status_reading.name)
    state.phase = "creating"
    state.save()
    with open(os.path.join(state_dir.lab_dir(status_reading.name), state_dir.LOCK_FILE), "w") as fh:
        fh.write("pid 4194304 (netlab up)\n")  # the lock as that up left it: nobody
    got = Lab(status_reading.name).status()
    assert got.repair == f"Lab({status_reading.name!r}).repair()", got
    assert got.error is not None and got.error.endswith(
        f"; `Lab({status_reading.name!r}).repair()` finishes it, or `Lab({status_reading.name!r}).down()` takes "
        "away what it made"), got.error
    assert "sudo" not in got.error, got.error
