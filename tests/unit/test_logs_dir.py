"""A directory where a container's log goes is someone's: a new run never moves nor removes it, and says so.

``mkdir logs/b.main.log`` while the container was stopped: its next start renamed the directory to the previous
log's name, or, with a previous log there, failed `up` whole with NotADirectoryError (test_logs_dir_live.py).
"""

from __future__ import annotations

import os

from netlab.workload.containers import log_blocked, log_path, new_run, previous_log_path


def test_a_new_run_leaves_a_directory_where_the_log_goes_and_says_why_it_cannot_start(state_root):
    log, previous = log_path("ibld", "b", "main"), previous_log_path("ibld", "b", "main")
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


def test_a_file_or_nothing_there_does_not_block_and_a_fifo_moves_to_the_previous_log(state_root):
    log, previous = log_path("ibld", "b", "main"), previous_log_path("ibld", "b", "main")
    os.makedirs(os.path.dirname(log))
    assert log_blocked(log) is None
    os.mkfifo(log)
    assert log_blocked(log) == (f"its log {log} is a FIFO, not a file: netlab leaves it as it is; "
                                "move it away, then run up again")
    new_run("ibld", "b", "main")  # as before: the run before's log moves to the previous one's name
    assert log_blocked(log) is None and not os.path.exists(log) and os.path.exists(previous)
    open(log, "w").close()
    assert log_blocked(log) is None
    os.remove(previous)
    os.mkdir(previous)  # a directory where the previous log goes: left, and the log stays (the run appends)
    new_run("ibld", "b", "main")
    assert os.path.isfile(log) and os.path.isdir(previous)
