"""What root tests of a run killed halfway (SIGKILL) wait for before they read what it left."""

from __future__ import annotations

import fcntl
import os
import time

from helpers import state_path


def lock_let_go(lab: str, within: float = 30.0) -> None:
    """Wait until nobody holds the lab's lock. A killed ``up`` shares it with the echo server launcher it started
    (workload/launch.py, until its server listens or the launcher exits): a launcher still loading Python when the
    ``up`` died holds it a moment longer, and ``list`` rightly says the lab is being made (no error) until then."""
    fd = os.open(state_path(lab, "lock"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + within
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, f"lab {lab}'s lock still held {within} s after its up was killed"
                time.sleep(0.05)
    finally:
        os.close(fd)
