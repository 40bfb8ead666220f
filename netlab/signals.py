"""SIGINT and SIGTERM handled alike for a block, and put back as they were after it.

``up`` turns them into its rollback (lab/up.py), the rollback and the pytest plugin's last take-down hold
them off (``signal.SIG_IGN``). ``down`` holds them until the lab is down (:func:`held`), then lets the first
take effect as the caller's handler says: a take-down cut short left a lab half down, its state and the
namespaces not yet unmounted behind (the CLI's Ctrl-C, the SIGTERM a library script turns into SystemExit).
Only the main thread may set a handler: in another one (``up --watch``
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
import sys
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


@contextlib.contextmanager
def held() -> Iterator[list[int]]:
    """SIGINT and SIGTERM wait for the block (a bounded piece of work that must not stop halfway): each one that
    comes is recorded in the list yielded, and once the block is done and the caller's handlers are back, the
    first is sent again to this process (``signal.raise_signal``), so it takes effect as it would have without
    the block: the caller's handler raises its exception (KeyboardInterrupt, the CLI's :class:`Terminated`,
    a script's SystemExit) from here, SIG_DFL ends the process, SIG_IGN drops it. A second signal (a
    repeated Ctrl-C, the SIGTERM a CI runner sends after its SIGINT) only waits with the first. Not the main
    thread: the block runs with the process's handlers as they are, and nothing is recorded."""
    came: list[int] = []
    try:
        with handled(lambda signum, frame: came.append(signum)):
            yield came
    finally:  # also after the block's own error: the signal is the caller's word, its error then the context
        if came:
            signal.raise_signal(came[0])


class Kept(KeyboardInterrupt):
    """A stop signal's exception whose handler also kept the signal, so that it is raised again where the
    program next asks (:func:`check`, up's journal). Python drops such an exception when the handler ran inside
    an object's ``__del__``; the program's hook does not print it then (:func:`terminate_as_interrupt`)."""


class Terminated(Kept):
    """SIGTERM, raised where the program was, as SIGINT raises KeyboardInterrupt."""

    exit_code = 128 + signal.SIGTERM


def exit_code(exc: BaseException) -> int:
    """The exit status of a stopped program: 128 + the signal's number (130 for a bare KeyboardInterrupt)."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, int) else 128 + signal.SIGINT


# The SIGTERMs the program's handler turned into Terminated. Python runs a handler wherever the main thread
# is: inside an object's __del__ (a Popen or a generator dropped) the exception is "ignored" (printed, then
# dropped), and the program went on as if no signal had come: an `up` signalled while it loaded brought the lab
# up and exited 0 (a CI flake). :func:`check` raises it again where the program asks.
_raised: list[int] = []


def raise_terminated(signum: int, frame: object) -> None:
    _raised.append(signum)
    raise Terminated(f"interrupted by {signal.Signals(signum).name}")


def check() -> None:
    """Raise the program's Terminated again if a SIGTERM came and its exception was swallowed (or raise it
    anew after it unwound: the program is ending then anyway). Asked before ``up`` and ``down`` change
    anything. A command that takes SIGTERM as its end (``capture``, as tcpdump) never asks."""
    if _raised:
        raise stopped_by(_raised[0])


def stopped_by(signum: int) -> KeyboardInterrupt:
    """The exception a stop signal raises: Terminated for SIGTERM, a KeyboardInterrupt (Ctrl-C's) else."""
    said = f"interrupted by {signal.Signals(signum).name}"
    return Terminated(said) if signum == signal.SIGTERM else KeyboardInterrupt(said)


def _unraisable(unraisable: Any) -> None:
    """sys.unraisablehook: a kept stop signal's exception swallowed in a finalizer is not printed (it is raised
    again where the program next asks); anything else is, as Python prints it."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, Kept):
        return
    sys.__unraisablehook__(unraisable)


def terminate_as_interrupt() -> None:
    """From now on SIGTERM stops this process as Ctrl-C does (:class:`Terminated`). The program's, not a
    library's: ``import netlab`` leaves its caller's handlers alone."""
    signal.signal(signal.SIGTERM, raise_terminated)
    sys.unraisablehook = _unraisable
