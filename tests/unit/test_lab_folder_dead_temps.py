"""A SIGKILL in `up` while it made the lab's folder left ``$STATE/.LAB.tmp.PID/netlab-lab``, which no command
removed: only a later process of the same pid did (QA rb61 2). The next making of the lab's folder (up) and
its forgetting (down) remove those whose process is proven gone: no such pid, or a process that started after
the folder was made. Nothing else: a live maker's, another lab's, one holding more than the mark."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from netlab.realize import lab_folder


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def temp(root, lab: str, pid: int, age: float = 0.0, extra: str | None = None) -> str:
    path = root / f".{lab}.tmp.{pid}"
    path.mkdir(mode=0o700)
    (path / lab_folder.MARK_FILE).touch()
    if extra:
        (path / extra).touch()
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return str(path)


def test_a_killed_makers_temporary_folder_goes_with_the_next_make(tmp_path):
    gone = temp(tmp_path, "rbx", dead_pid())
    assert lab_folder.make(str(tmp_path / "rbx"), "rbx")
    assert sorted(os.listdir(tmp_path)) == ["rbx"]
    assert not os.path.exists(gone)


def test_a_reused_pid_that_started_after_the_folder_does_not_keep_it(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as later:
        try:
            temp(tmp_path, "rbx", later.pid, age=3600)
            lab_folder.drop_dead_temps(str(tmp_path / "rbx"))
            assert os.listdir(tmp_path) == []
        finally:
            later.kill()


def test_what_is_not_proven_a_dead_makers_own_is_kept(tmp_path):
    live = temp(tmp_path, "rbx", os.getppid())  # a process that started before the folder: maybe making it
    other_lab = temp(tmp_path, "rbxy", dead_pid())
    more = temp(tmp_path, "rbq", dead_pid(), extra="someone's")
    lab_folder.drop_dead_temps(str(tmp_path / "rbx"))
    lab_folder.drop_dead_temps(str(tmp_path / "rbq"))
    assert all(os.path.isdir(p) for p in (live, other_lab, more))
    assert sorted(os.listdir(more)) == [lab_folder.MARK_FILE, "someone's"]


def test_down_forgetting_the_lab_takes_them_too(tmp_path, monkeypatch):
    from netlab.realize import lab_list, state_dir

    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path))
    gone = temp(tmp_path, "rbx", dead_pid())
    lab_list.forget("rbx")  # the lab's folder not there (a make killed before its rename): its temp all that is
    assert not os.path.exists(gone)


def starttime(pid: int) -> str:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rpartition(b")")[2].split()[19].decode()


def test_a_make_marks_its_temporary_folder_with_its_starttime(tmp_path, monkeypatch):
    seen = []
    real = lab_folder.renameat2

    def rename(old, new, *a):
        seen.append((tmp_path / os.path.basename(old) / lab_folder.MARK_FILE).read_text())
        return real(old, new, *a)

    monkeypatch.setattr(lab_folder, "renameat2", rename)
    assert lab_folder.make(str(tmp_path / "rbx"), "rbx")
    assert seen == [starttime(os.getpid())]


def test_a_live_makers_folder_is_kept_by_its_marks_starttime_whatever_the_wall_clock_says(tmp_path):
    """Its start time rebuilt from the wall clock after a step of the clock forward (here: the folder's mtime an hour
    back) came out after the folder's mtime: the folder of a live up was dropped under it."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as maker:
        try:
            path = temp(tmp_path, "rbx", maker.pid)
            (tmp_path / path / lab_folder.MARK_FILE).write_text(starttime(maker.pid))
            os.utime(path, (time.time() - 3600, time.time() - 3600))
            lab_folder.drop_dead_temps(str(tmp_path / "rbx"))
            assert os.listdir(tmp_path) == [os.path.basename(path)]
        finally:
            maker.kill()


def test_a_reused_pid_is_told_by_the_marks_starttime_whatever_the_wall_clock_says(tmp_path):
    """The pid's process now started after the folder's maker (its starttime is another), though the wall clock,
    stepped back, would have it started before the folder's mtime."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as later:
        try:
            path = temp(tmp_path, "rbx", later.pid)
            (tmp_path / path / lab_folder.MARK_FILE).write_text(str(int(starttime(later.pid)) - 1))
            os.utime(path, (time.time() + 3600, time.time() + 3600))
            lab_folder.drop_dead_temps(str(tmp_path / "rbx"))
            assert os.listdir(tmp_path) == []
        finally:
            later.kill()
