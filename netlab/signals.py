"""SIGINT and SIGTERM handled alike for a block, and put back as they were after it.

``up`` turns them into its rollback (lab/up.py), the rollback and the pytest plugin's last take-down hold
them off (``signal.SIG_IGN``). Only the main thread may set a handler: in another one (``up --watch``
repairs in a thread of their own) the block runs with the process's handlers as they are.
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
