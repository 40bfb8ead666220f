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
from typing import Callable


def take(fd: int, deadline: float, waiting: Callable[[str], str], busy: Callable[[str], Exception],
         told: bool = False, quiet_for: float = 0.0) -> bool:
    """``flock`` ``fd`` exclusively, polling until ``deadline`` (``time.monotonic()``).

    Once it has waited ``quiet_for`` seconds it prints ``waiting(holder)``,
    once (``told``: already printed); at the deadline it raises
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
                print(f"netlab: {waiting(holder)}", file=sys.stderr)
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
