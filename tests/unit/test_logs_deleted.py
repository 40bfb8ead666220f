"""A container's log file deleted or replaced while it runs (QA: `netlab logs` said `up` would give it a new one,
but `up` changed nothing, `status` was clean, and `logs` kept failing, exit 2). The container's stdout is a
descriptor of the old file: only its next start writes a new log, and `up` does not restart a running container.
So `logs` says what happened, where the output goes on (/proc/PID/fd/N, while it runs) and exits 3 (the
environment, not the user's input). No root: the "container" is a child process writing to a file here."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from netlab.api.exec import LogWriter, open_log
from netlab.errors import EnvironmentNotReady, UsageError

LAB = "qld1"


@pytest.fixture
def writer(tmp_path):
    """A running container's stand-in: a process whose stdout is its log (as spawn makes it), and the log."""
    path = str(tmp_path / "web.http.log")
    with open(path, "ab") as out:
        child = subprocess.Popen(["sh", "-c", "while :; do echo tick; sleep 0.02; done"], stdout=out)
    try:
        deadline = time.monotonic() + 5
        while os.path.getsize(path) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield path, child.pid
    finally:
        child.kill()
        child.wait()


def said(path: str, pid: int) -> str:
    with pytest.raises(EnvironmentNotReady) as err:
        open_log(path, "web", "http", LAB, writer=LogWriter(pid, True))
    assert err.value.exit_code == 3
    return str(err.value)


def test_a_log_that_is_there_is_read(writer):
    path, pid = writer
    with open_log(path, "web", "http", LAB, writer=LogWriter(pid, True)) as fh:
        assert fh.read().startswith(b"tick\n")


def test_a_log_deleted_while_the_container_runs_says_where_its_output_goes_on(writer):
    path, pid = writer
    os.unlink(path)
    line = said(path, pid)
    assert line == (f"the log of web/http, {path}, was deleted while the container runs: it writes on to the deleted "
                    f"file, readable as /proc/{pid}/fd/1 while it runs; its next start writes a new log (`up` does "
                    "not restart a running container)")
    with open(f"/proc/{pid}/fd/1", "rb") as fh:  # what it says is so: the output goes on there
        assert fh.read().startswith(b"tick\n")


@pytest.mark.parametrize("make", ["fifo", "dir", "file", "symlink"])
def test_a_log_replaced_while_the_container_runs_is_said_so(writer, make):
    path, pid = writer
    os.unlink(path)
    if make == "fifo":
        os.mkfifo(path)
    elif make == "dir":
        os.mkdir(path)
    elif make == "file":
        with open(path, "w") as fh:
            fh.write("someone else's\n")
    else:
        os.symlink("/etc/hostname", path)
    line = said(path, pid)
    assert line.startswith(f"the log of web/http, {path}, was replaced while the container runs: it writes on to "
                           f"the deleted file, readable as /proc/{pid}/fd/1"), line


def test_a_log_moved_away_while_the_container_runs_is_said_so(writer):
    path, pid = writer
    os.rename(path, path + ".kept")
    os.mkfifo(path)
    assert said(path, pid) == (f"the log of web/http, {path}, was replaced while the container runs: it writes on to "
                               "the file it had open, which is not this one; its next start writes a new log (`up` "
                               "does not restart a running container)")


def test_a_log_of_a_container_that_does_not_run(tmp_path):
    path = str(tmp_path / "web.http.log")
    with pytest.raises(UsageError, match=r"^no log for web/http yet \(was it started\?"):
        open_log(path, "web", "http", LAB, writer=LogWriter(None, False))
    with pytest.raises(EnvironmentNotReady, match=rf"^the log of web/http, {path}, was deleted; the container's "
                                                  "next start writes a new one"):
        open_log(path, "web", "http", LAB, writer=LogWriter(None, True))  # it ran, exited; its file went since
