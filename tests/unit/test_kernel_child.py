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


def _cleans_up_at_sigterm(marker: str, ignore: bool) -> None:
    """A child with something to undo: at SIGTERM it writes ``marker`` (its clean-up) and ends."""
    def stop(signum, frame):
        if ignore:
            return
        with open(marker, "w") as fh:
            fh.write("swept")
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
    time.sleep(60)


@pytest.mark.parametrize("ignore", [False, True], ids=["cleans-up", "ignores-sigterm"])
def test_an_interrupted_caller_gives_a_child_with_a_grace_sigterm_first_then_kills_it(tmp_path, ignore):
    """The probe agent's case: at Ctrl-C it got SIGKILL and never swept its neighbour entries. With a grace,
    SIGTERM, up to that long to end on its own (the clean-up done), then SIGKILL: bounded either way."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    marker = str(tmp_path / "swept")
    old = signal.signal(signal.SIGALRM, interrupt)
    child = start_child(_cleans_up_at_sigterm, (marker, ignore), grace=1.0)
    time.sleep(0.2)  # its handler is set
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            child.result(timeout=30)
        took = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert os.path.exists(marker) is not ignore
    assert took < (2.0 if ignore else 0.9), took  # the grace bounds it; a child that ends sooner is not waited on
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # reaped


def test_the_deadline_gives_a_child_with_a_grace_its_sigterm_too(tmp_path):
    marker = str(tmp_path / "swept")
    child = start_child(_cleans_up_at_sigterm, (marker, False), grace=1.0)
    with pytest.raises(ChildTimeout):
        child.result(timeout=0.3)
    assert os.path.exists(marker)


def test_a_sigterm_while_the_child_writes_its_answer_does_not_cut_it_short():
    """The grace's SIGTERM may come as the child, done, writes its answer (one larger than the pipe holds waits
    for the parent to read): the answer still comes back whole, and the child never runs on in its caller's
    code (a handler's exception there went up the forked copy of the parent's stack)."""
    child = start_child(lambda: b"x" * (1 << 20))
    time.sleep(0.5)  # done, and blocked writing into the full pipe
    os.kill(child.pid, signal.SIGTERM)
    assert child.result(timeout=10) == b"x" * (1 << 20)
