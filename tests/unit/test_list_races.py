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
from netlab.kernel import netns as nsmod
from netlab.realize import lab_list, lab_lock, state_dir, tags
from netlab.realize.state import LabState

LAB = "kr"


def save(phase: str) -> LabState:
    state = LabState(lab=LAB, netns={f"{LAB}-n1": "intent"}, phase=phase,
                     extra={tags.FOLDER_RECORD: tags.folder_record()})  # as an up records it: its tags name it
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


class UpAtWork:
    """An `up` of LAB as the kernel and the state folder show it: its lock, its write-ahead state (phase creating),
    then its namespace, tagged with this folder (in ``spaces``, the fake kernel's names and tags)."""

    def __init__(self, spaces: dict[str, str | None]):
        self.spaces = spaces
        self.lock: lab_lock.LabLock | None = None

    def takes_the_lab(self) -> None:
        self.lock = lab_lock.LabLock(LAB, "netlab up").__enter__()

    def makes_it(self, finished: bool) -> None:
        if self.lock is None:
            self.takes_the_lab()
        state = save("creating")
        self.spaces[f"{LAB}-n1"] = tags.state_tag(LAB, state.run_id, {tags.FOLDER_RECORD: tags.folder_record()})
        if finished:
            state.phase = "up"
            state.save()
            self.done()

    def done(self) -> None:
        if self.lock is not None:
            self.lock.__exit__()
            self.lock = None


@pytest.mark.parametrize("finished", [False, True], ids=["at-work", "finished"])
@pytest.mark.parametrize("first_read", ["no-folder", "folder-without-state"])
def test_a_lab_an_up_makes_while_list_reads_is_never_lost(first_read, finished, monkeypatch):
    """`list` read the state folder before the up wrote its state (no folder yet, or the folder with the up's lock
    alone), and the lab's tagged namespaces after the up made them: its row is the state's now, not lost."""
    spaces: dict[str, str | None] = {"other-x": None}
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(nsmod, "read_tag", lambda name: spaces.get(name))
    up = UpAtWork(spaces)
    if first_read == "folder-without-state":
        up.takes_the_lab()
        real = running.stateless_labs
        calls = iter(range(1000))

        def stateless_then_up():
            found = real()
            if next(calls) == 0:
                assert found == [LAB]
                up.makes_it(finished)
            return found

        monkeypatch.setattr(running, "stateless_labs", stateless_then_up)
    else:
        real_tagged = tags.tagged_labs

        def up_then_tagged(skip=(), **kw):
            up.makes_it(finished)
            return real_tagged(skip, **kw)

        monkeypatch.setattr(tags, "tagged_labs", up_then_tagged)
    try:
        rows = [row for row in running.labs() if row.lab == LAB]
    finally:
        up.done()
    assert [(row.phase, row.error) for row in rows] == [("up" if finished else "creating", None)], rows


def test_a_lab_whose_state_is_gone_is_still_lost(monkeypatch):
    spaces: dict[str, str | None] = {}
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(nsmod, "read_tag", lambda name: spaces.get(name))
    UpAtWork(spaces).makes_it(finished=True)
    lab_list.forget(LAB)
    rows = [row for row in running.labs() if row.lab == LAB]
    assert [row.phase for row in rows] == ["lost"] and "force=True" in str(rows[0].error), rows
