"""How many namespaces' rule transactions netlab runs at once (kernel/threads.py)."""

from __future__ import annotations

import threading

import pytest

from netlab.kernel import threads


@pytest.mark.parametrize("cores, nodes, expected", [
    (2, 1, 1),    # one node: no pool
    (2, 3, 3),    # more nodes than cores: all at once, the scheduler shares the cores
    (2, 20, 8),   # capped, for memory (an nft full sync holds ~50 MB while it parses)
    (16, 20, 16), # a bigger machine: one per core
    (None, 5, 5), # the core count unknown
    (2, 0, 1),
])
def test_rule_transactions_run_all_at_once_up_to_a_cap(monkeypatch, cores, nodes, expected):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    assert threads.transaction_workers(nodes) == expected


def test_side_by_side_keeps_the_items_order_and_raises_the_first_error():
    assert list(threads.side_by_side(lambda x: x * 2, [3, 1, 2], 2).items()) == [(3, 6), (1, 2), (2, 4)]

    def fail(x: int) -> int:
        raise ValueError(x)

    with pytest.raises(ValueError):
        threads.side_by_side(fail, [1, 2, 3], 2)


def test_after_a_failure_the_other_threads_stop_at_their_next_item(monkeypatch):
    made: list[threading.Event] = []

    class Event(threading.Event):  # side_by_side's stop event is the first one made in the call
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(threads.threading, "Event", Event)
    done = []
    wait_for_stop = True

    def fn(x: int) -> int:
        if x == 0:
            raise ValueError("first")
        if wait_for_stop:  # the other thread's item under way ends only once the failure has asked them to stop
            assert made[0].wait(10), "the failure never set the stop event"
        done.append(x)
        return x

    with pytest.raises(ValueError, match="first"):
        threads.side_by_side(fn, list(range(20)), 2, stop_on_error=True)
    assert done == [1]  # the other thread finished the item it had under way, and took no other
    done.clear()
    wait_for_stop = False
    with pytest.raises(ValueError, match="first"):
        threads.side_by_side(fn, list(range(20)), 2)  # without: the others finish their share
    assert sorted(done) == list(range(1, 20, 2))


def test_an_exception_in_the_callers_wait_still_waits_for_the_threads(monkeypatch):
    """A signal's exception (Ctrl-C) raised while the caller joins: the threads are stopped and waited for,
    so none runs on behind a rollback; then the exception is raised."""
    import time

    running = []

    def fn(x: int) -> int:  # the caller's share (even items) is quick, the other thread's is not
        running.append(x)
        time.sleep(0.05 if x % 2 else 0)
        running.remove(x)
        return x

    real_join = threads.threading.Thread.join
    calls = []

    def join(self, timeout=None):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # as a signal handler would, in the caller's thread
        return real_join(self, timeout)

    monkeypatch.setattr(threads.threading.Thread, "join", join)
    with pytest.raises(KeyboardInterrupt):
        threads.side_by_side(fn, list(range(10)), 2)
    assert running == []  # nothing still under way when side_by_side gave up
    assert len(calls) >= 2  # it went on waiting after the exception


def test_an_exception_while_a_thread_starts_still_waits_for_the_threads(monkeypatch):
    """A signal's exception can land in Thread.start(), which waits for the new thread to run: it escaped
    before the wait, and a thread making a namespace went on behind the rollback (a converge's kube-dns
    namespace was left, in no state). The threads are stopped and waited for there too."""
    import time

    running, done = [], []

    def fn(x: int) -> int:
        running.append(x)
        time.sleep(0.05)
        running.remove(x)
        done.append(x)
        return x

    real_start = threads.threading.Thread.start

    def start(self):
        real_start(self)
        raise KeyboardInterrupt  # as a signal handler would, once the thread runs

    monkeypatch.setattr(threads.threading.Thread, "start", start)
    with pytest.raises(KeyboardInterrupt):
        threads.side_by_side(fn, list(range(10)), 2)
    assert running == []  # nothing still under way when side_by_side gave up
    assert done == [1]  # the thread that ran stopped at its next item


def test_a_background_thread_gives_its_result_or_raises_what_it_raised_in_the_caller():
    from netlab.kernel.threads import Background

    assert Background(lambda a, b: a + b, 2, 3, name="t").join() == 5

    def fails() -> None:
        raise OSError(28, "No space left on device")

    work = Background(fails, name="t")
    with pytest.raises(OSError, match="No space"):
        work.join()


def test_a_second_signal_as_the_wait_checks_a_thread_still_waits_for_it(monkeypatch):
    """The first signal's exception lands in ``join`` (caught: the wait goes on); a second lands as the loop asks
    ``is_alive()`` again, outside that catch: it escaped, and the thread making a namespace (its item under way)
    went on behind the rollback, which had listed the lab's namespaces already: one ``<lab>-client``, lo only,
    tagged and in no state (``list``: lost; only ``down --force`` took it)."""
    gate = threading.Event()
    running, done = [], []

    def fn(x: int) -> int:
        running.append(x)
        if x == 1:  # the other thread's item: under way until the wait lets it finish
            gate.wait()
        running.remove(x)
        done.append(x)
        return x

    real_join, real_alive = threading.Thread.join, threading.Thread.is_alive
    calls = {"join": 0, "alive": 0}

    def join(self, timeout=None):
        calls["join"] += 1
        if calls["join"] == 1:
            raise KeyboardInterrupt  # the first signal, in the wait
        gate.set()
        real_join(self, timeout)

    def is_alive(self):
        calls["alive"] += 1
        if calls["alive"] == 2:
            raise KeyboardInterrupt  # the second, as the loop checks the thread again
        return real_alive(self)

    monkeypatch.setattr(threading.Thread, "join", join)
    monkeypatch.setattr(threading.Thread, "is_alive", is_alive)
    try:
        with pytest.raises(KeyboardInterrupt):
            threads.side_by_side(fn, [0, 1], 2)
        assert running == []  # nothing still under way when side_by_side gave up
    finally:
        gate.set()
    assert sorted(done) == [0, 1]
