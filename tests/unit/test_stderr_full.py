"""Standard error on a full disk (`2>/dev/full`): a line netlab cannot say does not change how the command ends.

The error handlers' one line to stderr failed with ENOSPC and escaped: every error, and every warning or note
said during a command, ended in exit 1 (the checks-failed code) with a traceback nobody could read, `up` too
with its lab made, and without its summary on stdout. Now an error keeps its own code (2 a user's error, 3 the
environment's, 1 checks failed), and a command that would have succeeded exits 3, a full disk's code (README,
"Exit codes"): a warning was lost. No traceback ever.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import click
import pytest

from netlab.cli import boundary
from netlab.cli.output import note
from netlab.errors import ChecksFailed, EnvironmentNotReady, UsageError

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "netlab", "data", "default.yaml")


class FullStderr:
    """A standard error whose every write fails as a full disk's does; no descriptor (nothing is dup2'ed)."""

    encoding, errors = "utf-8", "strict"

    def __init__(self) -> None:
        self.writes = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")
        if text:
            self.writes += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run(monkeypatch, callback) -> tuple[object, FullStderr]:
    """boundary.main() of a one-command program, its stderr full; the exit status it ends with."""
    full = FullStderr()
    monkeypatch.setattr(sys, "stderr", full)
    monkeypatch.setattr(boundary, "cli", click.Command("x", callback=callback))
    try:
        boundary.main([])
    except SystemExit as exc:
        return exc.code, full
    return 0, full


def raising(exc: BaseException):
    def callback() -> None:
        raise exc
    return callback


@pytest.mark.parametrize("exc, code", [(UsageError("no lab nope"), 2), (EnvironmentNotReady("not root"), 3),
                                       (ChecksFailed("drift"), 1)])
def test_an_error_that_cannot_be_said_keeps_its_own_exit_code(monkeypatch, exc, code):
    got, full = run(monkeypatch, raising(exc))
    assert got == code and full.writes == 1


def test_a_full_disk_of_netlabs_own_unsaid_is_still_3(monkeypatch):
    got, full = run(monkeypatch, raising(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/run/netlab/x")))
    assert got == 3 and full.writes == 1


def test_a_command_that_would_succeed_with_a_warning_unsaid_exits_3_having_done_its_work(monkeypatch):
    done = []

    def callback() -> None:
        note(["one"])
        note(["two"])
        done.append(True)  # the note's loss did not stop the command halfway
        click.echo("the output")

    got, full = run(monkeypatch, callback)
    assert (got, done, full.writes) == (3, [True], 2)


def test_a_command_that_fails_with_a_warning_unsaid_keeps_its_code(monkeypatch):
    def callback() -> None:
        note(["lost"])
        raise SystemExit(1)

    assert run(monkeypatch, callback)[0] == 1


def test_a_command_with_nothing_to_say_is_untouched(monkeypatch):
    assert run(monkeypatch, lambda: None)[0] == 0
    assert sys.stderr.__class__ is FullStderr  # the program's own stream, back as it was


def _netlab(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    with open("/dev/full", "w") as full:
        return subprocess.run([sys.executable, "-m", "netlab", *args], stdout=stdout, stderr=full, text=True,
                              timeout=60)


def test_to_dev_full_a_user_error_is_2_and_a_lost_note_3_and_nothing_else_changes(tmp_path):
    assert _netlab("validate", "-t", "/nonexistent/netlab.yaml").returncode == 2
    assert _netlab("plan", "-t", "/nonexistent/netlab.yaml", "-o", "json").returncode == 2
    ok = _netlab("validate", "-t", DEMO)
    assert (ok.returncode, ok.stdout.endswith(": ok (lab demo: 2 nodes, 4 pods, 0 services)\n")) == (0, True), ok
    noted = tmp_path / "noted.yaml"  # valid, with a note on stderr: a Service that selects no pod
    noted.write_text("name: sanote\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"
                     "services: [{name: s, selector: {app: nothing}, ports: [{port: 80}]}]\n")
    lost = _netlab("validate", "-t", str(noted))
    assert lost.returncode == 3 and ": ok (lab sanote:" in lost.stdout, lost  # said what it had to, on stdout
    with open("/dev/full", "w") as out:
        both = _netlab("validate", "-t", DEMO, stdout=out)  # the output too: a full disk's, 3
    assert both.returncode == 3
