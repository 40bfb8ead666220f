"""up, down and trace draw a progress bar on a terminal that can show one; on TERM=dumb (an Emacs shell, a CI log
that is a pty) rich draws none, and the transient bar left a stray empty first line (QA mf63 defect 6)."""

from __future__ import annotations

import os
import pty
import sys

import pytest

from netlab.cli import progress


class Tty:
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("term, drawn", [("dumb", False), ("unknown", False), ("xterm-256color", True)])
def test_a_bar_only_where_the_terminal_draws_one(monkeypatch, term, drawn):
    monkeypatch.setattr(sys, "stderr", Tty())
    for name in ("TTY_INTERACTIVE", "TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", term)
    bar, update = progress.progress_bar("up")
    assert (bar is not None) is drawn and (update is not None) is drawn


def test_on_a_dumb_terminal_the_bar_leaves_no_empty_line():
    """The whole of it: a pty with TERM=dumb, a bar drawn and stopped, nothing written."""
    code = ("from netlab.cli.progress import progress_bar\nbar, update = progress_bar('up')\n"
            "if bar is not None:\n    with bar:\n        update('x', 1, 2)\nprint('done', flush=True)\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-c", code], {**os.environ, "TERM": "dumb"})
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    assert out == b"done\r\n", out
