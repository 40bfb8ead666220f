"""What :meth:`netlab.Lab.popen` returns: a :class:`subprocess.Popen` whose ``with`` block stops the process.

A plain ``Popen``'s ``__exit__`` only closes its pipes and waits: for the long-running process popen is for (a
server under test), ``with lab.popen(pod, server) as srv:`` never left its block. This one's exit stops the
process first, as ``down`` stops every process of the lab (SIGTERM, then SIGKILL for one that is still there
:data:`STOP_GRACE` seconds later), and reaps it: its ``returncode`` is then the signal's (``-15``), or the
status it exited with before the block's end.
"""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Any

STOP_GRACE = 5.0  # seconds a process has after SIGTERM before SIGKILL


class PodProcess(subprocess.Popen[Any]):
    """A process :meth:`netlab.Lab.popen` started in a pod; leaving its ``with`` block stops and reaps it."""

    def __exit__(self, exc_type: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            stop(self)
        finally:
            super().__exit__(exc_type, value, traceback)  # closes its pipes, waits (it has ended by now)


def stop(process: subprocess.Popen[Any], grace: float | None = None) -> None:
    """SIGTERM, then SIGKILL if it has not ended after ``grace`` seconds (:data:`STOP_GRACE`); reaped either way."""
    grace = STOP_GRACE if grace is None else grace
    if process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
