"""Python's cycle collector held off while ``status`` builds what it keeps to its end.

``status`` of 500 pods holds the plan, every namespace's snapshot (links,
addresses, routes, rules: most of them unpickled from its readers) and what it
observed until it returns. None of it is garbage while it runs, yet every 700
allocations the collector walked the newest of it, every tenth time the older,
and once all of it: ~20 ms of the CPU of the CLI's process (~33 -> ~13 ms with
the rest of the command's collections, which are its loading's; gc.callbacks,
2026-12-06). What it throws away is freed by its reference count as usual; the
collector is on again, as it was, when it returns.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused() -> Iterator[None]:
    """The body runs with the cycle collector off; it is on again after it if it was on before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
