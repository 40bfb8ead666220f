"""A lab's ``logs/`` (or ``dns/``) that is a symlink or a bind mount of a user's folder (QA q47 1).

A bind mount of a folder of the same file system has the same st_dev as the lab's folder, so "same device" let
``down`` empty the user's folder (every file, names netlab never writes too); a symlink at ``logs/`` was followed by
the clean-up of the containers' logs, and ``up`` wrote ``dns/hosts`` through a symlinked ``dns/``. Now a mount id
tells the mounts apart (realize/lab_folder.mount_id), nothing is removed or written through either, and ``down``
says in one line what it left (the folder stays, unmarked). The real bind mount: tests/integration/
test_lab_folder_user_dirs_live.py.
"""

from __future__ import annotations

import os

from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_folder, lab_list
from netlab.realize.state import LabState
from netlab.workload import containers

LAB = "ufd"


def _lab(state_root):
    LabState(lab=LAB).save()
    folder = state_root / LAB
    (folder / "logs").mkdir()
    (folder / "logs" / "a.main.log").write_text("log\n")
    return folder


def test_a_mount_id_is_read_for_an_open_folder(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert isinstance(lab_folder.mount_id(fd), int)
    finally:
        os.close(fd)


def test_down_removes_nothing_in_a_logs_folder_on_another_mount_of_the_same_device(state_root, monkeypatch):
    folder = _lab(state_root)
    (folder / "logs" / "archive.txt").write_text("USER\n")
    real = lab_folder._mount_of_name
    monkeypatch.setattr(lab_folder, "_mount_of_name",  # a bind mount: the same st_dev, its own mount id
                        lambda fd, name: -7 if name == "logs" else real(fd, name))
    left = lab_list.forget(LAB)
    assert left == [f"{folder}/logs: {lab_folder.ON_A_MOUNT}; left alone (and the folder with it)"]
    assert sorted(os.listdir(folder / "logs")) == ["a.main.log", "archive.txt"]
    assert os.listdir(folder) == ["logs"]  # the rest of netlab's went, the mark too: no lab's, listed by nobody
    assert lab_list.known_labs() == [] and lab_list.stateless_labs() == []


def test_down_follows_no_symlink_at_logs(state_root, tmp_path):
    folder = _lab(state_root)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "a.main.log").write_text("keep\n")
    (theirs / "other.txt").write_text("keep\n")
    os.rename(folder / "logs", tmp_path / "moved")
    os.symlink(theirs, folder / "logs")
    removed = containers.remove_logs(LAB, ["a.main.log"])
    forgot = containers.forget_runs(LAB, "a", "main")
    assert sorted(os.listdir(theirs)) == ["a.main.log", "other.txt"], "removed through the link"
    assert removed == [f"{folder}/logs: {lab_folder.A_SYMLINK}; left alone"]
    assert forgot == [f"pod a container main: {folder}/logs: {lab_folder.A_SYMLINK}; its logs are left alone"]
    done = teardown.down(LAB, FakeKernel())  # the link itself goes (never followed), the lab's folder with it
    assert sorted(os.listdir(theirs)) == ["a.main.log", "other.txt"] and done.skipped == []
    assert not folder.exists()


def test_sub_problem_is_none_for_netlabs_own_folder_and_one_not_there(state_root):
    _lab(state_root)
    assert lab_folder.sub_problem(str(state_root), LAB, "logs") is None
    assert lab_folder.sub_problem(str(state_root), LAB, "dns") is None
