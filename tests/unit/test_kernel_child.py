"""run_in_child: a function's result from a forked child, every wait bounded (no root)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from netlab.kernel.child import ChildDied, ChildError, ChildTimeout, run_in_child, start_child


def test_the_result_comes_back_and_the_child_is_reaped():
    child = start_child(lambda a, b: {"sum": a + b, "pid": os.getpid()}, (2, 3))
    out = child.result(timeout=10)
    assert out["sum"] == 5 and out["pid"] == child.pid != os.getpid()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # already reaped: no zombie left behind


def test_a_result_bigger_than_the_pipe_buffer():
    data = run_in_child(lambda: os.urandom(1024) * 5000, timeout=30)
    assert len(data) == 5_120_000


def test_the_childs_exception_is_raised_here_with_its_traceback():
    def fails() -> None:
        raise ValueError("no such pod")

    with pytest.raises(ValueError, match="no such pod") as info:
        run_in_child(fails, what="the test child", timeout=10)
    note = "\n".join(info.value.__notes__)
    assert "in the test child (pid" in note and "raise ValueError" in note


def test_an_exception_that_cannot_cross_the_pipe_becomes_a_child_error():
    class Local(Exception):  # a local class cannot be pickled
        pass

    def fails() -> None:
        raise Local("boom")

    with pytest.raises(ChildError, match="Local: boom"):
        run_in_child(fails, timeout=10)


def test_keyboard_interrupt_in_the_child_is_the_childs_not_ours():
    def interrupted() -> None:
        raise KeyboardInterrupt()

    with pytest.raises(ChildError, match="KeyboardInterrupt"):
        run_in_child(interrupted, timeout=10)


def test_the_deadline_kills_a_child_that_hangs():
    t0 = time.monotonic()
    child = start_child(time.sleep, (60,), what="the sleeper")
    with pytest.raises(ChildTimeout, match="the sleeper did not finish within 0.3 s; killed it"):
        child.result(timeout=0.3)
    assert time.monotonic() - t0 < 10
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # killed and reaped


def test_a_child_that_dies_without_a_result():
    with pytest.raises(ChildDied, match="exit code 3"):
        run_in_child(os._exit, (3,), timeout=10)
    with pytest.raises(ChildDied, match="killed by SIGKILL"):
        run_in_child(lambda: os.kill(os.getpid(), signal.SIGKILL), timeout=10)


def test_a_grandchild_holding_the_pipe_does_not_delay_the_result():
    """The result is length-prefixed: the parent never waits for the pipe's end of file."""
    def forks() -> int:
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(30)
            os._exit(0)
        return grandchild

    t0 = time.monotonic()
    grandchild = run_in_child(forks, timeout=10)
    try:
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(grandchild, signal.SIGKILL)


def test_a_caller_interrupted_while_waiting_takes_the_child_with_it():
    """Ctrl-C (here: an alarm whose handler raises) while waiting: the child is killed and reaped."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    child = start_child(time.sleep, (60,))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            child.result(timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # killed and reaped: no zombie left
