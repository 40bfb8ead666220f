"""Clean-up of a container's logs removes only the files netlab wrote (workload/containers.py).

A container taken out of its pod, a pod taken out of the lab, or a command changed (a new pod's container, with
no run before it) takes its logs along, by their names: a FIFO or a symlink someone put at such a name was
unlinked, a file netlab never made. Now only a regular file goes; anything else stays as it is, and is said in
one line, as a start says what is not a file at a log's name (containers.log_blocked). A symlink is never
followed: its target stays too.
"""

from __future__ import annotations

import os
import stat

import pytest

from netlab.realize.state_dir import lab_dir
from netlab.workload.containers import forget_runs, log_path, logs_by_pod, previous_log_path, remove_logs

LAB = "ibfo"


def _odd(path: str, kind: str, target: str) -> None:
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "a symlink":
        os.symlink(target, path)
    else:
        os.mkdir(path)


def _is(path: str, kind: str) -> bool:
    mode = os.lstat(path).st_mode
    return {"a FIFO": stat.S_ISFIFO, "a symlink": stat.S_ISLNK, "a directory": stat.S_ISDIR}[kind](mode)


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink", "a directory"])
def test_forget_runs_removes_the_log_it_wrote_and_leaves_what_is_not_a_file_at_the_previous_logs_name(
        state_root, tmp_path, kind):
    log, previous = log_path(LAB, "b", "main"), previous_log_path(LAB, "b", "main")
    lab_dir("ibfo")  # made as netlab makes it (marked)
    os.makedirs(os.path.dirname(log))
    target = tmp_path / "theirs.txt"
    target.write_text("not netlab's\n")
    with open(log, "w") as f:
        f.write("the run before\n")
    _odd(previous, kind, str(target))
    assert forget_runs(LAB, "b", "main") == [
        f"pod b container main: its previous log {previous} is {kind}, not a file: netlab leaves it as it is"]
    assert not os.path.lexists(log) and _is(previous, kind)
    assert target.read_text() == "not netlab's\n"
    # which: the start of a changed command says its current log's itself (it fails on it)
    _odd(log, kind, str(target))
    assert forget_runs(LAB, "b", "main", which=("previous log",)) == [
        f"pod b container main: its previous log {previous} is {kind}, not a file: netlab leaves it as it is"]
    assert _is(log, kind) and _is(previous, kind) and target.read_text() == "not netlab's\n"


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink"])
def test_remove_logs_of_a_pod_leaves_what_is_not_a_file_and_says_it(state_root, tmp_path, kind):
    """A pod taken out of the lab: its logs by the folder's listing; a FIFO or symlink among them stays."""
    log, previous = log_path(LAB, "b", "main"), previous_log_path(LAB, "b", "main")
    lab_dir("ibfo")  # made as netlab makes it (marked)
    os.makedirs(os.path.dirname(log))
    target = tmp_path / "theirs.txt"
    target.write_text("not netlab's\n")
    with open(log, "w") as f:
        f.write("the last run\n")
    _odd(previous, kind, str(target))
    assert remove_logs(LAB, logs_by_pod(LAB)["b"]) == [
        f"log {previous} is {kind}, not a file: netlab leaves it as it is"]
    assert os.listdir(os.path.dirname(log)) == [os.path.basename(previous)] and _is(previous, kind)
    assert target.read_text() == "not netlab's\n"
    assert remove_logs(LAB, ["b.gone.log"]) == []  # nothing there: nothing to do
