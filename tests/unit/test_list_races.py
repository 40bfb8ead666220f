"""`netlab list` while an `up` or `down` of a lab is at work and ends (api/running.labs, realize/interrupted.stalled),
on the fake kernel, in a private state directory: the run's end injected between list's two reads of the lab.

`list` read the lab's state (phase creating or deleting), then found its lock free: the run had finished meanwhile,
yet the row said it was killed and told the user to take the lab down. A lab listed as having no state, whose
namespaces `tagged_labs` found once its `up` had made them, was called lost and sent to `down --force`.
"""

from __future__ import annotations

import os

import pytest

from netlab.api import running
from netlab.kernel.fake import FakeKernel
from netlab.lab.teardown import down
from netlab.realize import lab_lock, state_dir
from netlab.realize.state import LabState

LAB = "kr"


def save(phase: str) -> LabState:
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase=phase)
    state.save()
    return state


def finishing_between_reads(monkeypatch, finish) -> None:
    """`list` reads every state (iter_states), then judges each: ``finish`` runs once the lab's state is read,
    before it is judged, as the run at work on it ends in between."""
    real = running.iter_states

    def racing():
        for st in real():
            if getattr(st, "lab", None) == LAB:
                finish()
            yield st

    monkeypatch.setattr(running, "iter_states", racing)


def test_an_up_that_finished_between_lists_reads_is_not_said_killed(monkeypatch):
    state = save("creating")
    lock = lab_lock.LabLock(LAB, "netlab up").__enter__()  # the up at work, as list reads its state

    def up_ends():
        state.phase = "up"
        state.save()
        lock.__exit__()

    finishing_between_reads(monkeypatch, up_ends)
    rows = [row for row in running.labs() if row.lab == LAB]
    assert [(row.phase, row.error) for row in rows] == [("creating", None)], rows


def test_a_down_that_finished_between_lists_reads_is_not_said_killed(monkeypatch):
    save("deleting")
    finishing_between_reads(monkeypatch, lambda: down(LAB, FakeKernel()))
    rows = [row for row in running.labs() if row.lab == LAB]
    assert [row.error for row in rows] == [None], rows
    assert not os.path.lexists(state_dir.lab_dir(LAB, create=False))


@pytest.mark.parametrize("phase", ["creating", "deleting"])
def test_a_run_that_was_killed_is_still_said_so(phase):
    save(phase)
    with open(os.path.join(state_dir.lab_dir(LAB), state_dir.LOCK_FILE), "w") as fh:
        fh.write("pid 4194304 (netlab up)\n")  # above pid_max's default: nobody
    rows = [row for row in running.labs() if row.lab == LAB]
    assert len(rows) == 1 and "ended before it finished (killed)" in str(rows[0].error), rows

