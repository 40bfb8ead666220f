"""A directory where a container's log goes is someone's: a new run never moves nor removes it, and says so.

``mkdir logs/b.main.log`` while the container was stopped: its next start renamed the directory to the previous
log's name, or, with a previous log there, failed `up` whole with NotADirectoryError (test_logs_dir_live.py).
"""

from __future__ import annotations

import os
import stat

import pytest

from netlab.realize.state_dir import lab_dir
from netlab.workload.containers import log_blocked, log_path, new_run, previous_log_path


def test_a_new_run_leaves_a_directory_where_the_log_goes_and_says_why_it_cannot_start(state_root):
    log, previous = log_path("ibld", "b", "main"), previous_log_path("ibld", "b", "main")
    lab_dir("ibld")
    os.makedirs(log)
    open(os.path.join(log, "mine"), "w").close()
    for before in (False, True):  # no run before, then one
        if before:
            with open(previous, "w") as f:
                f.write("the run before\n")
        new_run("ibld", "b", "main")
        assert os.listdir(log) == ["mine"]
        assert log_blocked(log) == (f"its log {log} is a directory, not a file: netlab leaves it as it is; "
                                    "move it away, then run up again")
    assert open(previous).read() == "the run before\n"


def test_a_file_or_nothing_there_does_not_block_and_a_fifo_where_the_log_goes_stays(state_root):
    log, previous = log_path("ibld", "b", "main"), previous_log_path("ibld", "b", "main")
    lab_dir("ibld")
    os.makedirs(os.path.dirname(log))
    assert log_blocked(log) is None and new_run("ibld", "b", "main") is None  # no run before: nothing to move
    os.mkfifo(log)
    line = f"its log {log} is a FIFO, not a file: netlab leaves it as it is; move it away, then run up again"
    assert log_blocked(log) == line
    assert new_run("ibld", "b", "main") == line  # left where it is, as log_blocked says
    assert stat.S_ISFIFO(os.lstat(log).st_mode) and not os.path.lexists(previous)
    os.remove(log)
    with open(log, "w") as f:
        f.write("the run before\n")
    assert log_blocked(log) is None and new_run("ibld", "b", "main") is None
    assert not os.path.exists(log) and open(previous).read() == "the run before\n"


def _odd(path: str, kind: str) -> None:
    if kind == "a directory":
        os.mkdir(path)
        open(os.path.join(path, "mine"), "w").close()
    elif kind == "a FIFO":
        os.mkfifo(path)
    else:
        os.symlink("/etc/hostname", path)


@pytest.mark.parametrize("kind", ["a directory", "a FIFO", "a symlink"])
def test_a_new_run_leaves_what_is_not_a_file_where_the_previous_log_goes_and_does_not_start(state_root, kind):
    """The current log could not move over a directory there, and the new run appended to the run before's log
    (`logs` mixed the two runs, `logs --previous` had none); a FIFO or a symlink there was replaced (someone's,
    removed). Now it stays, the current log stays as the run before left it, and the start fails in one line."""
    log, previous = log_path("ibld", "b", "main"), previous_log_path("ibld", "b", "main")
    lab_dir("ibld")  # made as netlab makes it (marked)
    os.makedirs(os.path.dirname(log))
    with open(log, "w") as f:
        f.write("the run before\n")
    _odd(previous, kind)
    before = os.lstat(previous)
    line = new_run("ibld", "b", "main")
    assert line == (f"its previous log {previous} is {kind}, not a file: netlab leaves it as it is; move it away, "
                    "then run up again")
    after = os.lstat(previous)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert open(log).read() == "the run before\n" and log_blocked(log) is None
    assert kind != "a directory" or os.listdir(previous) == ["mine"]
    os.rename(previous, os.path.join(os.path.dirname(log), "moved"))  # the user moves it away: the log moves on
    assert new_run("ibld", "b", "main") is None
    assert not os.path.exists(log) and open(previous).read() == "the run before\n"


def _status_repair_lines(drift: tuple[str, ...]) -> str:
    """What `status` prints below its drift lines about what `up` repairs (cli/lab.py), for these lines."""
    from click.testing import CliRunner

    from netlab.cli.status_text import _repair_lines
    from netlab.workload.policy import up_leaves

    kept = tuple(line for line in drift if up_leaves(line))  # as api.internals.internal_status keeps them
    with CliRunner().isolation() as (out, _err, _):
        _repair_lines("sudo netlab up --lab ibld", drift, kept)
    return out.getvalue().decode()


def test_status_tells_a_container_whose_log_is_a_directory_to_move_it_away_not_to_fix_its_command(state_root):
    """`status` of a container whose start failed on a directory where its log goes added "fix the command ...,
    then `up`": the command is fine, the directory is what stops it, and only the user moves it."""
    from netlab.workload.policy import START_FAILED

    log = log_path("ibld", "b", "main")
    lab_dir("ibld")  # made as netlab makes it (marked)
    os.makedirs(log)
    line = f"containers: pod b container main {START_FAILED}{log_blocked(log)}"
    said = _status_repair_lines((line,))
    assert said == ("`sudo netlab up --lab ibld` does not repair that container: a container whose log is not a "
                    "file cannot start, and netlab leaves what stands there as it is: move it away (its line names "
                    "it), then `up`\n"), said
    # A command that cannot run keeps its own words
    said = _status_repair_lines(("containers: pod b container main could not start: No such file or directory",))
    assert "fix the command" in said and "move it away" not in said, said
