"""A lab folder without its state file (no root; the real thing: tests/integration/test_state_lost.py).

What a run of a lab leaves in its folder (its echo server's socket, logs, UTS pins) beside no state file is a
lab whose state was lost, not a lab that is down: `down` says so and changes nothing (it deleted the folder's
files and said "nothing to do"). For that to hold, `forget` deletes the state file last but for the lock.
"""

from __future__ import annotations

import os

import pytest

from netlab.errors import EnvironmentNotReady, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_list
from netlab.realize.state import LabState, StateCorrupt, StateLost, lost_state, running_lab

LAB = "ilost"


def test_a_folder_with_a_runs_files_and_no_state_is_a_lost_state_and_down_changes_nothing(state_root):
    LabState(lab=LAB).save()
    folder = state_root / LAB
    (folder / "echo.sock").write_bytes(b"")
    (folder / "logs").mkdir()
    (folder / "lock").write_bytes(b"")  # LabLock's, as every run leaves it
    os.unlink(folder / "state.json")
    before = sorted(os.listdir(folder))
    with pytest.raises(StateLost) as info:
        teardown.down(LAB, FakeKernel())
    assert isinstance(info.value, EnvironmentNotReady) and info.value.exit_code == 3
    assert str(info.value) == (
        f"lab {LAB} has no state file ({folder}/state.json), yet its folder {folder} holds what a run of it left "
        f"(echo.sock, logs, state.sum): its state was lost; take the lab down with "
        f"`{netlab_command(f'down --lab {LAB} --force')}` (it deletes only namespaces tagged as the lab's, "
        "pods' files in /etc/netns whose first line says they are the lab's, and the files netlab wrote in the lab's "
        "folder)")
    assert sorted(os.listdir(folder)) == before
    with pytest.raises(StateLost):
        running_lab(LAB)  # status, get, exec ... say the same


def test_a_folder_with_only_its_lock_is_a_lab_that_is_not_up(state_root):
    (state_root / LAB).mkdir(mode=0o700)
    (state_root / LAB / "lock").write_bytes(b"pid 12 (netlab status)\n")  # an earlier release's, unmarked
    assert lost_state(LAB) is None
    assert teardown.down(LAB, FakeKernel()).was_up is False
    assert not (state_root / LAB).exists()


def test_forget_deletes_the_state_file_after_the_runs_files_and_before_the_lock(state_root, monkeypatch):
    LabState(lab=LAB).save()
    folder = state_root / LAB
    for name in ("echo.sock", "echo.log", "zz"):
        (folder / name).write_bytes(b"")
    (folder / "lock").write_bytes(b"")
    gone: list[str] = []
    real = os.unlink

    def unlink(path, *args, **kwargs):
        gone.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    left = lab_list.forget(LAB)
    assert gone[-3:] == ["state.json", "lock", "netlab-lab"] and set(gone) == {
        "echo.sock", "echo.log", "state.sum", "state.json", "lock", "netlab-lab"}, gone
    # zz is no name netlab writes: left, and the folder with it, unmarked (no lab's any more), and said
    assert os.listdir(folder) == ["zz"] and left == [f"{folder}/zz: not netlab's; left alone (and the folder with it)"]


def test_forget_removes_a_folder_that_has_no_lock(state_root):
    LabState(lab=LAB).save()  # saved without LabLock: no lock file
    assert "lock" not in os.listdir(state_root / LAB)
    lab_list.forget(LAB)
    assert not (state_root / LAB).exists()  # it stayed, empty, in /run/netlab


def test_list_shows_a_lost_lab_with_the_way_out_and_not_a_folder_of_only_a_lock(state_root):
    from netlab.api.running import labs

    LabState(lab="ialive").save()
    for name in (LAB, "inone"):
        (state_root / name).mkdir(mode=0o700)
        (state_root / name / "lock").write_bytes(b"pid 12 (netlab status)\n")
    (state_root / LAB / "echo.sock").write_bytes(b"")
    rows = labs()
    assert [(r.lab, r.phase) for r in rows] == [("ialive", "creating"), (LAB, "lost")]
    assert rows[1].error is not None and rows[1].error.endswith(
        f"Lab({LAB!r}).down(force=True) (it deletes only namespaces tagged as the lab's, pods' files in "
        "/etc/netns whose first line says they are the lab's, and the files netlab wrote in the lab's folder)")


def test_a_corrupt_state_says_force_takes_the_pods_files_too(state_root):
    """The way out of a corrupt state and of a lost one is the same `down --force`: it also removes the pods' files
    under /etc/netns whose first line says they are the lab's, and the line says so (it named the namespaces only)."""
    LabState(lab=LAB).save()
    (state_root / LAB / "state.json").write_text("{not json")
    with pytest.raises(StateCorrupt) as info:
        running_lab(LAB)
    assert str(info.value).startswith(f"lab {LAB}: its state file {state_root}/{LAB}/state.json is corrupt (")
    assert str(info.value).endswith(
        f"take the lab down anyway with `{netlab_command(f'down --lab {LAB} --force')}` (it deletes only "
        "namespaces tagged as the lab's, pods' files in /etc/netns whose first line says they are the lab's, and the "
        "files netlab wrote in the lab's folder)")
