"""A container's log FILE that is a mount point, a user's file bind-mounted on ``logs/<pod>.<container>.log`` (or
on the previous log) to keep it (QA q53 3): the rename that makes the current log the previous one is EBUSY, and the
container's restart failed ("could not start: its log ... cannot become the previous one", no reason, exit 1).
Now it is the user's, as a bind-mounted ``logs/`` folder is: nothing moved nor written in it, the new run's output
to /dev/null, one line. The real bind mount: tests/integration/test_lab_writes_user_dirs_live.py."""

from __future__ import annotations

import os

import pytest

from netlab.realize import lab_folder, state_dir
from netlab.workload import containers
from test_lab_writes_user_dirs import _files, _on_another_mount

LAB = "ulf"


@pytest.mark.parametrize("mounted", ["b.main.log", "b.main.previous.log"])
def test_a_log_file_on_a_mount_of_its_own_is_the_users(state_root, monkeypatch, mounted):
    state_dir.lab_dir(LAB)
    logs = state_root / LAB / "logs"
    logs.mkdir()
    for name in ("b.main.log", "b.main.previous.log"):
        (logs / name).write_text(f"USER {name}\n")
    before = _files(logs)
    _on_another_mount(monkeypatch, mounted)
    said: list[str] = []
    assert containers.new_run(LAB, "b", "main", said) is None  # the container starts
    assert said == [f"pod b container main: its log {logs / mounted} is a mount point (a bind mount of a user's "
                    "file), not netlab's: left alone, nothing moved nor written in it; the container's output goes "
                    "to /dev/null"]
    log = containers.log_path(LAB, "b", "main")
    assert containers.log_mounted(log)
    fd = containers.open_log(log)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == "/dev/null"
    finally:
        os.close(fd)
    assert _files(logs) == before
    assert containers.logs_refused(LAB) is None  # the folder itself is netlab's


def test_netlabs_own_log_files_are_moved_as_before(state_root):
    state_dir.lab_dir(LAB)
    log = containers.log_path(LAB, "b", "main")
    fd = containers.open_log(log)
    os.write(fd, b"one\n")
    os.close(fd)
    said: list[str] = []
    assert containers.new_run(LAB, "b", "main", said) is None and said == []
    fd = os.open(state_root / LAB / "logs", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert not containers.log_mounted(log) and not lab_folder.on_another_mount(fd, "b.main.previous.log")
    finally:
        os.close(fd)
    assert open(containers.previous_log_path(LAB, "b", "main")).read() == "one\n" and not os.path.exists(log)
