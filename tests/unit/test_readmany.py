"""Many namespaces read by this process and forked children (kernel/readmany.py), without root: how many
readers, the dealing of parts across fork, the merge, and what a failing reader leaves (nothing)."""

from __future__ import annotations

import errno
import os
import time

import pytest

from netlab.kernel import readmany
from netlab.kernel.base import KernelError


@pytest.mark.parametrize("cores, count, readers", [(2, 500, 2), (2, 100, 1), (2, 128, 2), (8, 1000, 4), (1, 500, 1),
                                                   (None, 500, 1), (2, 0, 1)])
def test_one_reader_per_core_each_with_a_fair_share(monkeypatch, cores, count, readers):
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: cores)
    assert readmany.readers(count) == readers


def drain(parts) -> list[list[str]]:
    return [part for part in parts]


@pytest.mark.parametrize("count, readers, size", [(500, 2, 16), (8, 2, 1), (100, 4, 6), (3, 1, 1), (0, 1, 1),
                                                  (100_000, 2, 49)])
def test_parts_are_dealt_in_order_a_few_namespaces_each(count, readers, size):
    names = [f"x-{i}" for i in range(count)]
    dealer = readmany.Dealer(names, readers)
    try:
        assert dealer.size == size and dealer.left() == -(-count // size) <= readmany.Dealer.TOKENS
        parts = drain(dealer.parts())
        assert [n for part in parts for n in part] == names and all(len(p) == size for p in parts[:-1])
        assert dealer.left() == 0 and drain(dealer.parts()) == []  # dealt once: an empty pipe is its end
    finally:
        dealer.close()


def test_two_processes_taking_parts_at_once_get_each_part_once():
    names = [f"x-{i}" for i in range(2000)]
    dealer = readmany.Dealer(names, 2)
    assert dealer.size == 16
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child takes parts as fast as it can, and writes down which it got
        os.close(r)
        got = ",".join(part[0] for part in dealer.parts()).encode()
        os.write(w, got)
        os._exit(0)
    os.close(w)
    here = [part[0] for part in dealer.parts()]
    there = os.read(r, 1 << 20).decode().split(",")
    os.waitpid(pid, 0)
    os.close(r)
    dealer.close()
    firsts = [n for n in here + there if n]
    assert sorted(firsts) == sorted(names[::16])  # every part once, by one of the two
    assert here == [n for n in names[::16] if n in set(here)]  # each in the order dealt


@pytest.fixture
def started(monkeypatch):
    """The pids of the children in_children starts, and the dealers it makes."""
    pids: list[int] = []
    dealers: list[readmany.Dealer] = []
    real = readmany.start_child

    def start_child(*args, **kwargs):
        child = real(*args, **kwargs)
        pids.append(child.pid)
        return child

    class Dealer(readmany.Dealer):
        def __init__(self, *args):
            super().__init__(*args)
            dealers.append(self)

    monkeypatch.setattr(readmany, "start_child", start_child)
    monkeypatch.setattr(readmany, "Dealer", Dealer)
    monkeypatch.setattr(readmany, "MIN_SHARE", 1)
    monkeypatch.setattr(readmany.os, "cpu_count", lambda: 3)
    return pids, dealers


def reaped(pids: list[int]) -> bool:
    """Every one of these children is gone and reaped: none running, no zombie."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(pids)


def each(parts, value) -> dict:
    return {n: value(n) for part in parts for n in part}


def until_dealt(dealers) -> None:
    """Waits (10 s at most) until the children have taken every part."""
    deadline = time.monotonic() + 10
    while dealers[0].left() and time.monotonic() < deadline:
        time.sleep(0.005)


def until_taken(dealers) -> None:
    """Waits (10 s at most) until a child has taken a part."""
    deadline = time.monotonic() + 10
    parts = -(-len(dealers[0].names) // dealers[0].size)
    while dealers[0].left() == parts and time.monotonic() < deadline:
        time.sleep(0.005)


def test_every_namespace_is_read_once_by_one_reader_and_merged(started):
    pids, dealers = started
    names = [f"x-{i}" for i in range(40)]
    got = readmany.in_children(names, lambda parts: each(parts, lambda n: ("here", os.getpid())),
                             lambda parts: each(parts, lambda n: ("child", os.getpid())))
    assert sorted(got) == sorted(names) and len(pids) == 2 and reaped(pids)
    assert {pid for where, pid in got.values() if where == "child"} <= set(pids)
    assert all(pid == os.getpid() for where, pid in got.values() if where == "here")

    pids.clear()  # this process busy elsewhere: the children read everything
    got = readmany.in_children(names, lambda parts: each(parts, lambda n: os.getpid()),
                             lambda parts: each(parts, lambda n: os.getpid()), lambda: until_dealt(dealers[1:]))
    assert sorted(got) == sorted(names) and set(got.values()) <= set(pids) and reaped(pids)


def test_a_childs_kernel_error_comes_back_as_itself(started):
    pids, dealers = started

    def there(parts):
        raise KernelError(None, errno.ENOENT, "b: namespace not found")

    with pytest.raises(KernelError) as info:  # this process busy until the child has taken a part
        readmany.in_children(["a", "b"], lambda parts: each(parts, str), there, lambda: until_taken(dealers[-1:]))
    assert (info.value.code, str(info.value)) == (errno.ENOENT, "b: namespace not found")
    assert reaped(pids)


def test_a_child_that_dies_is_a_kernel_error_and_a_failing_read_here_reaps_the_children(started):
    pids, dealers = started
    with pytest.raises(KernelError) as info:
        readmany.in_children(["a", "b"], lambda parts: each(parts, str), lambda parts: os._exit(3),
                             lambda: until_taken(dealers[-1:]))
    assert info.value.code == errno.EIO and "reading namespaces:" in str(info.value)
    assert "exit code 3" in str(info.value)

    def here(parts):
        raise KernelError(None, errno.EBUSY, "here failed")

    pids.clear()
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="here failed"):  # each child keeps one part: the others are here's
        readmany.in_children([f"x-{i}" for i in range(6)], here, lambda parts: time.sleep(30) or {})
    assert len(pids) == 2 and reaped(pids) and time.monotonic() - t0 < 10  # killed, not waited for


def test_the_callers_other_work_runs_here_first_while_the_children_read(started):
    """``meanwhile`` runs in this process once the children are started (so nothing it does is in them),
    before this process reads; if it fails, the children are reaped all the same."""
    pids, dealers = started
    order: list[str] = []
    names = [f"x-{i}" for i in range(6)]
    got = readmany.in_children(names, lambda parts: order.append("here") or each(parts, lambda n: os.getpid()),
                               lambda parts: time.sleep(0.2) or each(parts, lambda n: os.getpid()),
                               lambda: order.append(f"meanwhile in {os.getpid()}, {len(pids)} children"))
    assert order[0] == f"meanwhile in {os.getpid()}, 2 children" and order[1:] and set(order[1:]) == {"here"}
    assert sorted(got) == names and set(got.values()) - {os.getpid()} <= set(pids)

    def fails():
        raise KernelError(None, errno.EIO, "meanwhile failed")

    pids.clear()
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="meanwhile failed"):
        readmany.in_children(["a", "b"], lambda parts: {}, lambda parts: time.sleep(30) or {}, fails)
    assert reaped(pids) and time.monotonic() - t0 < 10
