"""Standard error that a full disk cannot break (``2>/dev/full``, a log file on a full disk).

A line netlab could not write to stderr raised OSError (ENOSPC) where it was said: a warning or a note stopped
the command halfway (``up`` made the lab and never said so on stdout), and an error's own line, failing in the
error boundary, escaped it: exit 1, the checks-failed code, for every error, whatever it was. While a command runs
its stderr is this stream: a line the file refuses is lost, not raised (the descriptor is pointed at /dev/null,
so that what is still buffered, and Python's flush at exit, go nowhere rather than fail again), and the command
goes on. How it ends is then the boundary's (cli/boundary.py, :meth:`Guard.exit_code`): an error keeps its own
exit code; a command that would have succeeded exits 3, a full disk's (README, "Exit codes"), as it does when its
output cannot be written. A closed pipe (EPIPE) is not lost but raised, as before: the reader went away (141).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO

from netlab.errors import EXIT_ENVIRONMENT


class Guard:
    """``stream`` (sys.stderr) with its write errors kept, not raised; :attr:`lost` the first one."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.lost: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._lose(exc)
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            self._lose(exc)

    def __getattr__(self, name: str) -> Any:  # encoding, errors, isatty, fileno ...: the stream's own
        return getattr(self.stream, name)

    def _lose(self, exc: OSError) -> None:
        """The line is lost; what is left in the stream's buffer goes to /dev/null instead of failing again."""
        self.lost = self.lost or exc
        with contextlib.suppress(OSError, AttributeError, ValueError):
            fd = self.stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
            self.stream.flush()

    def exit_code(self, code: Any) -> Any:
        """The exit status of a command that ended with ``code``: its own, or 3 (a full disk's) for a success
        whose line on stderr was lost."""
        if self.lost is not None and code in (0, None):
            return EXIT_ENVIRONMENT
        return code


@contextlib.contextmanager
def guarded() -> Any:
    """sys.stderr as a :class:`Guard` while the block runs (the stream as it was afterwards); yields the guard, or
    None when there is no stderr (``2>&-``)."""
    stream = sys.stderr
    if stream is None or isinstance(stream, Guard):
        yield None
        return
    guard = Guard(stream)
    sys.stderr = guard
    try:
        yield guard
    finally:
        guard.flush()
        if sys.stderr is guard:
            sys.stderr = stream
