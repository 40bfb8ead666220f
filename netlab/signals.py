"""SIGINT and SIGTERM handled alike for a block, and put back as they were after it.

``up`` turns them into its rollback (lab/up.py), the rollback and the pytest plugin's last take-down hold
them off (``signal.SIG_IGN``). Only the main thread may set a handler: in another one (``up --watch``
repairs in a thread of their own) the block runs with the process's handlers as they are.

The ``netlab`` program (launch.py) stops on SIGTERM as on Ctrl-C from its first line: a CI job's cancel,
``timeout`` and systemd send SIGTERM, which left to its default killed the program silently with status 143
wherever it was (a plain ``up`` while it loaded or planned, before its rollback's handlers were set; an ``up
--watch`` before its loop's). It raises :class:`Terminated`, a KeyboardInterrupt, which unwinds as Ctrl-C's
does: one line, and the exit status of the signal's convention, 128 + its number (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

STOPPING = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handled(handler: Any) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``handler`` (a function, or signal.SIG_IGN) for the block."""
    old = {}
    for sig in STOPPING:
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: the signals are not this block's
            pass
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program was, as SIGINT raises KeyboardInterrupt."""

    exit_code = 128 + signal.SIGTERM


def exit_code(exc: BaseException) -> int:
    """The exit status of a stopped program: 128 + the signal's number (130 for a bare KeyboardInterrupt)."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, int) else 128 + signal.SIGINT


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"interrupted by {signal.Signals(signum).name}")


def terminate_as_interrupt() -> None:
    """From now on SIGTERM stops this process as Ctrl-C does (:class:`Terminated`). The program's, not a
    library's: ``import netlab`` leaves its caller's handlers alone."""
    signal.signal(signal.SIGTERM, raise_terminated)
