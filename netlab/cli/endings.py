"""How a command ends when it does not end by itself: a stop signal (Ctrl-C, SIGTERM) or the reader of its output
or of its errors gone (`| head -1`), each said as the program says it, one line and its exit status."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

import click

from netlab import signals
from netlab.errors import NetlabError


def as_error(exc: KeyboardInterrupt) -> NetlabError:
    """A stop signal that ends a command, as the program says it (cli/boundary.py): one line, exit 128 + the
    signal. click would turn it into its Abort after an empty line on stderr (a terminal's ``^C`` closed), and
    lose the line of netlab's Interrupted (a signal during up, rolled back) that says what became of the lab."""
    signals.ending()  # the command is over: a second signal must not cut its line short
    said = NetlabError(str(exc) if exc.args else "interrupted")
    said.exit_code = signals.exit_code(exc)
    return said


def stop_line(exc: BaseException) -> str:
    """The one line a stop signal ends a command with (after :func:`end_caret`)."""
    signals.ending()
    end_caret(exc)
    return f"netlab: {exc if exc.args else 'interrupted'}"


def end_caret(exc: BaseException) -> None:
    """A Ctrl-C typed on a terminal left its ``^C`` echoed there (the tty's echoctl) with no newline: on a
    terminal netlab's line starts on a line of its own; in a pipe or a file (a script, CI) nothing comes
    before it."""
    if signals.exit_code(exc) == 128 + signal.SIGINT and sys.stderr is not None and sys.stderr.isatty():
        click.echo("", err=True)


def reader_gone() -> bool:
    """Standard output or standard error is a pipe whose reader has closed it (the kernel flags its write end
    with POLLERR): `netlab break --list | head -1`, or an error said to `2>&1 | head -1`."""
    return bool(_gone_fds())


def _gone_fds() -> list[int]:
    """Which of standard output (1) and standard error (2) lead to a pipe with no reader."""
    gone = []
    for stream in (sys.stdout, sys.stderr):
        try:
            poller = select.poll()
            poller.register(stream.fileno(), 0)
            if any(event & select.POLLERR for _fd, event in poller.poll(0)):
                gone.append(stream.fileno())
        except (AttributeError, OSError, ValueError):
            continue
    return gone


def reader_went_away() -> int:
    """End quietly with the status of a program that SIGPIPE killed, as cat and ls end there (click would say
    1, Python's traceback 1), whether the output's reader or the errors' went away: a pipe with no reader is
    pointed at /dev/null, so that Python's flush at exit does not fail again."""
    for fd in _gone_fds():
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return 128 + signal.SIGPIPE
