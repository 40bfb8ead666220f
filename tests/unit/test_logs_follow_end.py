"""`netlab logs -f` ends when the container it follows has ended, after its last lines, as `kubectl logs -f` and
`crictl logs -f` do (QA: -f of an exited container waited until Ctrl-C, so `netlab logs -f job | grep done`
hung). Its end is read from a pidfd of the container's task, taken while the lab's state says it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import types

import pytest
from click.testing import CliRunner

from netlab import api
from netlab.api import exec as api_exec
from netlab.api.lab import Lab
from netlab.cli import workload as cli_workload
from netlab.cli.base import cli
from test_logs_runs import LAB, model, write  # noqa: F401 (model: the fixture)
from netlab.workload.containers import log_path


class Hung(Exception):
    pass


@contextlib.contextmanager
def no_hang(seconds: int = 30):
    """Before the fix -f waited for ever: the test fails instead of hanging the suite (not a timing check)."""
    def hung(*_):
        raise Hung(f"logs -f still following {seconds}s after the container ended")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def logs(model, monkeypatch):  # noqa: F811
    monkeypatch.setattr(Lab, "model", property(lambda self: model))
    monkeypatch.setattr(Lab, "state", lambda self: types.SimpleNamespace(extra={}))
    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: Lab(LAB)))
    path = log_path(LAB, "fedora-1", "main")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return path


def test_follow_of_a_container_that_has_exited_prints_its_log_and_ends(logs):
    write(logs, "run at 1\nbye\n")  # no task runs it (the state has no record of one): it has exited
    with no_hang():
        out = CliRunner().invoke(cli, ["logs", "--lab", LAB, "fedora-1", "-f"])
    assert (out.exit_code, out.output) == (0, "run at 1\nbye\n")


def test_follow_ends_when_the_running_container_ends_after_its_last_line(logs, monkeypatch):
    write(logs, "first\n")
    task = subprocess.Popen(["sh", "-c", f"read x; echo last >> {logs}"], stdin=subprocess.PIPE)
    monkeypatch.setattr(api_exec, "log_writer", lambda *a: api_exec.LogWriter(task.pid, True))
    try:
        task.stdin.close()  # it writes its last line and exits, while (or before) -f follows it
        with no_hang():
            out = CliRunner().invoke(cli, ["logs", "--lab", LAB, "fedora-1", "-f"])
        assert (out.exit_code, out.output) == (0, "first\nlast\n")
    finally:
        task.kill()
        task.wait()
