"""A lab's folder leaves its path in one step as it is removed (lab_removal.take_away), and a folder that left the path
while it was judged is nothing there to refuse (lab_folder.not_ours); root: test_down_folder_removal_race.

Removed name by name at its path, commands met it half removed: emptied and unmarked, "not a lab folder of
netlab's" (exit 3); and a judgement begun on a marked folder that a down then took away read the mark as missing,
and said the same of a folder that was no longer there.
"""

from __future__ import annotations

import errno
import os
import subprocess

from netlab.realize import lab_folder, lab_list, lab_lock, lab_removal, state_dir
from netlab.realize.state import LabState


def test_a_folder_taken_away_while_it_is_judged_is_nothing_to_refuse(state_root, monkeypatch):
    LabState(lab="ta").save()
    path = str(state_root / "ta")
    real, taken = os.lstat, []

    def lstat(name, *args, **kw):
        if name == os.path.join(path, lab_folder.MARK_FILE) and not taken:
            taken.append(name)
            lab_list.forget("ta")  # a down took the folder away between the look at it and the look at its mark
        return real(name, *args, **kw)

    monkeypatch.setattr(os, "lstat", lstat)
    assert lab_folder.not_ours(path) is None
    monkeypatch.setattr(os, "lstat", real)
    assert not os.path.lexists(path)


def test_a_folder_swapped_while_it_is_judged_is_judged_as_the_one_there_now(state_root, monkeypatch):
    LabState(lab="ta").save()
    path = str(state_root / "ta")
    real = os.lstat

    def lstat(name, *args, **kw):
        if name == os.path.join(path, lab_folder.MARK_FILE) and not os.path.lexists(path + ".old"):
            os.rename(path, path + ".old")  # taken away, and a lab's folder made again at once
            assert lab_folder.make(path, "ta")
            raise FileNotFoundError(errno.ENOENT, "gone", name)
        return real(name, *args, **kw)

    monkeypatch.setattr(os, "lstat", lstat)
    assert lab_folder.not_ours(path) is None
    monkeypatch.setattr(os, "lstat", real)
    assert lab_folder.not_ours(path + ".old") is None  # marked: the old one was netlab's as well
    os.mkdir(state_root / "foreign", 0o700)
    assert lab_folder.not_ours(str(state_root / "foreign"))  # a folder that stays unmarked is still refused


def test_a_removal_takes_the_folder_off_its_path_before_its_last_names_go(state_root, monkeypatch):
    LabState(lab="ta").save()
    (state_root / "ta" / "lock").write_text("pid 1 (netlab down)\n")
    seen = []
    real = os.unlink

    def unlink(name, *args, dir_fd=None, **kw):
        if name in lab_removal.LAST and dir_fd is not None:
            seen.append((name, os.path.lexists(state_root / "ta"), sorted(os.listdir(state_root))))
        return real(name, *args, dir_fd=dir_fd, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    assert lab_list.forget("ta") == []
    gone = f".ta.gone.{os.getpid()}"
    assert seen == [("state.json", False, [gone]), ("lock", False, [gone]), (lab_folder.MARK_FILE, False, [gone])]
    assert os.listdir(state_root) == []


def test_a_leftover_of_this_pid_is_cleared_and_a_folder_that_cannot_be_renamed_goes_at_its_path(state_root,
                                                                                                monkeypatch):
    gone = state_root / f".ta.gone.{os.getpid()}"  # a process of this pid killed as it took a folder away
    gone.mkdir(mode=0o700)
    (gone / "lock").write_text("")
    (gone / lab_folder.MARK_FILE).write_text("")
    LabState(lab="ta").save()
    assert lab_list.forget("ta") == [] and os.listdir(state_root) == []

    def no_noreplace(old, new, dir_fd=lab_folder.AT_FDCWD):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(lab_folder, "renameat2", no_noreplace)  # a file system without RENAME_NOREPLACE
    LabState(lab="ta").save()
    assert lab_list.forget("ta") == [] and os.listdir(state_root) == []
    with lab_lock.LabLock("ta", "netlab status"):  # a folder its lock made, dropped as the lock goes
        assert sorted(os.listdir(state_root / "ta")) == ["lock", lab_folder.MARK_FILE]
    assert os.listdir(state_root) == []
    state_dir._checked.clear()


def test_a_folder_a_killed_down_left_off_the_path_is_removed_by_the_next_down_of_that_lab(state_root):
    """A down killed between its rename and its rmdir leaves .<lab>.gone.<pid>, its state, lock and mark in it:
    it was removed only by a later process of the same pid. The next down of that lab removes it once no process
    has that pid; one whose process runs is its own, at work, and stays."""
    child = subprocess.Popen(["sleep", "30"])
    try:
        gone_dead = state_root / ".tk.gone.999999999"  # no process has it (above pid_max)
        gone_live = state_root / f".tk.gone.{child.pid}"
        for folder in (gone_dead, gone_live):
            folder.mkdir()
            for name in ("state.json", "lock", lab_folder.MARK_FILE):
                (folder / name).write_text("x")
        assert lab_folder.make(str(state_root / "tk"), "tk")
        assert lab_removal.remove_own(str(state_root), "tk") == []
        assert sorted(os.listdir(state_root)) == [gone_live.name], os.listdir(state_root)
    finally:
        child.kill()
        child.wait()
