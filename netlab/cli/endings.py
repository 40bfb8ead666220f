"""How a command ends when it does not end by itself: a stop signal (Ctrl-C, SIGTERM) or the reader of its output
or of its errors gone (`| head -1`), each said as the program says it, one line and its exit status."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from typing import TYPE_CHECKING

import click

from netlab import signals
from netlab.errors import NetlabError, down_command

if TYPE_CHECKING:
    from netlab.api.topology import Loaded


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


def load_stopped(topology: str | None, lab_name: str | None, exc: KeyboardInterrupt) -> NetlabError:
    """The line of an `up` a stop signal ended while it read the topology (before any lab was touched): it said a
    bare "interrupted", where a signal a moment later says the lab is as it was. The edit is not known yet."""
    signals.ending()
    which = f"lab {lab_name.strip()}" if lab_name else f"the lab of {topology}" if topology else "the lab"
    said = NetlabError(f"{str(exc) if exc.args else 'interrupted'} while it read the topology, before it changed "
                       f"anything; {which} is as it was (what the edit would change was not known yet)")
    said.exit_code = signals.exit_code(exc)
    return said


def up_stopped(loaded: "Loaded", exc: KeyboardInterrupt, version: object = None) -> NetlabError:
    """The line of an `up` a stop signal ended. Its rollback's (api.Interrupted) says what it took back; a
    signal before the run began or once it was done (as it let go of the lab, as it said what it did) adds
    whether the lab is up: a fresh lab made whole was said "interrupted by SIGTERM", and looked taken back; a
    running lab whose state file is as it was (``version``) before the run began says that nothing of it was
    applied (it said "lab L is up", as after a run that applied the edit)."""
    from netlab import api
    from netlab.realize import converging
    from netlab.realize.state import load_state, state_version

    lab_name = loaded.lab.name

    signals.ending()
    said = NetlabError(str(exc) if exc.args else "interrupted")
    said.exit_code = signals.exit_code(exc)
    if isinstance(exc, api.Interrupted):
        return said
    try:
        state = load_state(lab_name)
    except NetlabError:
        return said
    if state is not None and state.phase == "up" and version is not None and state_version(lab_name) == version:
        edit = converging.changes(state.topology, loaded.lab.topo.model_dump(mode="json", by_alias=True,
                                                                           exclude_none=True))
        said = NetlabError(f"{said} {converging.not_applied(lab_name, edit)}")
        said.exit_code = signals.exit_code(exc)
    elif state is not None and state.phase == "up":
        said = NetlabError(f"{said}; lab {lab_name} is up (`{down_command(lab_name)}` takes it down)")
        said.exit_code = signals.exit_code(exc)
    return said
