"""Lock files that name their holder: taken with a bounded wait, and a waiting command says whom it waits for.

Two locks are made of them: a lab's (``realize/state_dir.LabLock``: one
command changes a lab at a time) and the machine's probing turn
(``probe/turns.py``: one probe fills the shared neighbour table at a time).
The lock is an exclusive ``flock`` on an open file, so it goes when its
holder's descriptor closes, also when the holder is killed; the file's text
is only the holder's name, for the others' messages.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import logging

# Whom a wait is told to. The netlab program prints "netlab: waiting for ..." on its standard error
# (launch.main sets this); in a library caller's program standard error is not netlab's to write on, and
# the wait goes to logging's logger "netlab" at WARNING: the program's own handlers, or pytest's captured
# log of a test that waited, and nothing at all when the program configured no logging.
PRINT_WAITS = False
LOGGER = "netlab"


def take(fd: int, deadline: float, waiting: Callable[[str], str], busy: Callable[[str], Exception],
         told: bool = False, quiet_for: float = 0.0) -> bool:
    """``flock`` ``fd`` exclusively, polling until ``deadline`` (``time.monotonic()``).

    Once it has waited ``quiet_for`` seconds it tells ``waiting(holder)`` (:func:`tell`),
    once (``told``: already told); at the deadline it raises
    ``busy(holder)``. Returns ``told``.
    """
    tell_at = time.monotonic() + quiet_for
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return told
        except BlockingIOError:
            holder = holder_of(fd)
            if time.monotonic() >= deadline:
                raise busy(holder) from None
            if not told and time.monotonic() >= tell_at:
                tell(waiting(holder))
                told = True
            time.sleep(0.02)


def name_holder(fd: int, text: str) -> None:
    """Write who holds the lock into its file (a full disk only loses the name)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{text}\n".encode(), 0)
    except OSError:
        pass


def holder_of(fd: int) -> str:
    """The holder's name as its file says, or a generic one."""
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another netlab process"


def tell(text: str) -> None:
    """Say that a command waits: on standard error in the netlab program, else through logging."""
    if PRINT_WAITS:
        print(f"netlab: {text}", file=sys.stderr)
        return
    logger().warning(text)


def logger() -> logging.Logger:
    """The library's logger "netlab", with a NullHandler: a program that configured no logging is told
    nothing (not Python's last-resort line on its standard error). Loaded when first used: logging costs
    the CLI's start some 6 ms, and a command that never waits has no use for it."""
    import logging

    log = logging.getLogger(LOGGER)
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    return log
