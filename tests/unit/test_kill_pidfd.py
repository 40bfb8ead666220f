"""QA q9 (suspected): kill.terminate left the pidfd it had just opened when ``still_ours`` raised."""

from __future__ import annotations

import os

import pytest

from netlab.kernel import kill


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_terminate_closes_the_pidfd_when_the_check_raises():
    def check(pid: int) -> bool:
        raise RuntimeError("state unreadable")

    before = _open_fds()
    with pytest.raises(RuntimeError, match="state unreadable"):
        kill.terminate([os.getpid()], check)  # our own process: never signalled, the check raises first
    assert _open_fds() == before


def test_terminate_closes_the_pidfd_of_a_process_that_is_not_ours():
    before = _open_fds()
    assert kill.terminate([os.getpid()], lambda pid: False) == []
    assert _open_fds() == before
