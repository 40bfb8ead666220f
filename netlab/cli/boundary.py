"""The program's error boundary: each error a command ends with, said in one line with its exit code."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import Any

import click

from netlab import signals
from netlab.cli import endings, error_doc, stderr_guard
from netlab.cli.base import cli
from netlab.errors import (DISK_FULL, EXIT_ENVIRONMENT, NetlabError, TopologyError, display_path, open_files,
                           typed_words, with_open_files)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group, map NetlabError to one line and an exit code."""
    # The group's callback records --debug here as click parsed it: a word of the command that `exec POD -- ...`
    # runs is not netlab's option.
    obj: dict[str, Any] = {}
    # A line stderr cannot take (a full disk) is lost, not raised: the command goes on, an error keeps its exit
    # code, and a success whose warning was lost exits 3 (cli/stderr_guard.py).
    with stderr_guard.guarded() as guard:
        try:
            _ended(argv, obj)
        except SystemExit as exc:
            if guard is None or exc.code == guard.exit_code(exc.code):
                raise
            raise SystemExit(guard.exit_code(exc.code)) from None
        if guard is not None and guard.lost is not None:
            sys.exit(guard.exit_code(0))


def _ended(argv: list[str] | None, obj: dict[str, Any]) -> None:
    """The command, and how it ends when the reader of its errors went away, or a second stop signal came."""
    try:
        try:
            _run(argv, obj)
        except BrokenPipeError:
            # The reader of the errors went away while netlab said one (`validate -t bad.yaml 2>&1 | head -1`):
            # 141, as for the output's reader, not Python's 1 for the exception it could not print.
            if not endings.reader_gone():
                raise
            sys.exit(endings.reader_went_away())
    except KeyboardInterrupt as exc:  # a second stop signal as the first one's line was said (before ending())
        sys.exit(signals.said(exc))


def _run(argv: list[str] | None, obj: dict[str, Any]) -> None:
    """The click group, each error it raises said in words with its exit code."""
    try:
        with typed_words(sys.argv[1:] if argv is None else argv):
            cli.main(args=argv, prog_name="netlab", standalone_mode=False, obj=obj)
        if sys.stdout is not None:  # None: started with standard output closed (`>&-`)
            sys.stdout.flush()  # what is still buffered: a full disk is said below, not by Python at exit
    except NetlabError as exc:
        # An error that a stop signal caused, or raised once one came, is the signal's line (unless it is one)
        if exc.exit_code < 128 and signals.stop_of(exc) is not None:
            sys.exit(signals.said(exc))
        if not isinstance(exc.__cause__, KeyboardInterrupt):  # a stop signal: its line alone
            _traceback_for_debug(obj, exc)
        located = isinstance(exc, TopologyError)  # already FILE[:LINE]: field: message
        if isinstance(exc.__cause__, KeyboardInterrupt):  # a stop signal (netlab's Interrupted says its lab's fate)
            endings.end_caret(exc.__cause__)
        note = exc.note if isinstance(exc, TopologyError) else None  # what the problems kept unchecked: netlab's
        lines = with_open_files(str(exc), exc).splitlines() or [type(exc).__name__]
        for line in lines:
            bare = (located and line != note) or _located(line)
            click.echo(line if bare else f"netlab: {line}", err=True)
        error_doc.write(obj, lines[0], exc.exit_code, exc)  # -o json: the error as a document on stdout too
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click's word for a KeyboardInterrupt outside a command: SIGTERM's too
        stopped = exc.__context__ if isinstance(exc.__context__, KeyboardInterrupt) else None
        click.echo(endings.stop_line(stopped or KeyboardInterrupt()), err=True)
        sys.exit(signals.exit_code(stopped or KeyboardInterrupt()))
    except click.ClickException as exc:
        exc.show()
        error_doc.write(obj, exc.format_message(), exc.exit_code)
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (signals.Terminated): 130 or 143
        click.echo(endings.stop_line(exc), err=True)
        sys.exit(signals.exit_code(exc))
    except PermissionError as exc:
        if signals.stop_of(exc) is not None:
            sys.exit(signals.said(exc))
        _traceback_for_debug(obj, exc)
        from netlab.kernel.caps import denied

        said = denied(exc)
        click.echo(f"netlab: {said}", err=True)
        error_doc.write(obj, said, EXIT_ENVIRONMENT)
        sys.exit(EXIT_ENVIRONMENT)
    except Exception as exc:  # a full disk or the open-files limit (an OSError, or an error one became on its way):
        # one line, exit 3; a stop signal's exception that Python wrapped (signals.stop_of): its line; else a bug
        full = isinstance(exc, OSError) and exc.errno in DISK_FULL
        if signals.stop_of(exc) is not None or not (full or open_files(exc)):
            sys.exit(signals.said(exc))  # raised again when it is no stop signal
        _traceback_for_debug(obj, exc)
        text = _unwritable(exc) if isinstance(exc, OSError) and full else "" if open_files(exc) is exc else str(exc)
        said = with_open_files(text, exc)
        click.echo(f"netlab: {said}", err=True)
        error_doc.write(obj, said, EXIT_ENVIRONMENT)
        sys.exit(EXIT_ENVIRONMENT)


def _traceback_for_debug(obj: dict[str, Any], exc: BaseException) -> None:
    """--debug: the Python traceback of an error netlab says in words, on stderr before its line. The line, the
    -o json error document and the exit code stay what they are without --debug: a script that turns --debug on
    to see why a step fails still branches on the same exit code."""
    if obj.get("debug"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)


def _unwritable(exc: OSError) -> str:
    """A write that a full disk refused, in words (``netlab probe -o json > report.json`` on a full disk).

    Netlab's own files (the lab's state, --junit, -o FILE) say so where they are written, naming the file;
    a write to a descriptor names none: standard output's. What it could not take is dropped (stdout onto
    /dev/null), so that Python's own flush at exit does not fail again with a traceback."""
    if exc.filename:
        return f"cannot write {display_path(exc.filename)}: {exc.strerror}"
    if not _output_can_fill():  # a pipe or a terminal never says ENOSPC: some file of netlab's, unnamed
        from netlab.realize.state_dir import STATE_ROOT

        return (f"a write to a file failed: {exc.strerror} (not the output's: it goes to a pipe or a terminal); "
                f"free space in {display_path(STATE_ROOT)} (or point NETLAB_STATE_DIR at another directory)")
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return f"cannot write the output: {exc.strerror} (it is cut short)"


def _output_can_fill() -> bool:
    """Whether standard output or error is a file or a device that can refuse a write with ENOSPC (not a pipe,
    a socket or a terminal, nor closed): only then is an unnamed ENOSPC "cannot write the output"."""
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) or stat.S_ISBLK(mode) or (stat.S_ISCHR(mode) and not os.isatty(fd)):
                return True  # a device such as /dev/full, not a terminal
    return False


def _located(line: str) -> bool:
    """Topology problems already start with FILE:LINE; print them bare."""
    head = line.split(":", 2)
    return len(head) >= 2 and head[1].isdigit()
