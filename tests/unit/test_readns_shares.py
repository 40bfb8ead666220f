"""Many namespaces read in shares, the others' in forked children (kernel/readns.py), without root:
the dealing, the merge, and what a failing reader leaves (nothing)."""

from __future__ import annotations

import errno
import os
import time

import pytest

from netlab.kernel import readns
from netlab.kernel.base import KernelError


@pytest.mark.parametrize("cores, count, parts", [(2, 500, 2), (2, 100, 1), (2, 128, 2), (8, 1000, 4), (1, 500, 1),
                                                 (None, 500, 1), (2, 0, 1)])
def test_namespaces_are_dealt_one_share_per_core(monkeypatch, cores, count, parts):
    monkeypatch.setattr(readns.os, "cpu_count", lambda: cores)
    names = [f"x-{i}" for i in range(count)]
    got = readns.shares(names)
    assert len(got) == parts and sorted(n for part in got for n in part) == sorted(names)
    if parts == 2:
        assert got[0][:2] == ["x-0", "x-2"] and got[1][:2] == ["x-1", "x-3"]  # dealt in turn: nodes spread


@pytest.fixture
def started(monkeypatch):
    """The pids of the children in_children starts."""
    pids: list[int] = []
    real = readns.start_child

    def start_child(*args, **kwargs):
        child = real(*args, **kwargs)
        pids.append(child.pid)
        return child

    monkeypatch.setattr(readns, "start_child", start_child)
    return pids


def reaped(pids: list[int]) -> bool:
    """Every one of these children is gone and reaped: none running, no zombie."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(pids)


def test_each_share_is_read_once_and_merged(started):
    seen = []
    got = readns.in_children([["a", "c"], ["b"], ["d"]], lambda part: seen.append(part) or {n: n.upper() for n in part},
                             lambda part: {n: f"child {os.getpid()} {n}" for n in part})
    assert seen == [["a", "c"]]  # only the first share here
    assert list(got) == ["a", "c", "b", "d"] and got["a"] == "A"
    assert got["b"].startswith("child ") and got["b"] != f"child {os.getpid()} b"  # read in another process
    assert len(started) == 2 and reaped(started)


def test_a_childs_kernel_error_comes_back_as_itself(started):
    def there(part):
        raise KernelError(None, errno.ENOENT, f"{part[0]}: namespace not found")

    with pytest.raises(KernelError) as info:
        readns.in_children([["a"], ["b"]], lambda part: {}, there)
    assert (info.value.code, str(info.value)) == (errno.ENOENT, "b: namespace not found")
    assert reaped(started)


def test_a_child_that_dies_is_a_kernel_error_and_a_failing_read_here_reaps_the_children(started):
    with pytest.raises(KernelError) as info:
        readns.in_children([["a"], ["b"]], lambda part: {}, lambda part: os._exit(3))
    assert info.value.code == errno.EIO and "reading namespaces:" in str(info.value) and "exit code 3" in str(info.value)

    def here(part):
        raise KernelError(None, errno.EBUSY, "here failed")

    started.clear()
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="here failed"):
        readns.in_children([["a"], ["b"], ["c"]], here, lambda part: time.sleep(30) or {})
    assert len(started) == 2 and reaped(started) and time.monotonic() - t0 < 10  # killed, not waited for


def test_the_callers_other_work_runs_here_after_its_share_while_the_children_read(started):
    """``meanwhile`` runs in this process once its share is read and the children are started (so nothing it
    does is in them), before their shares are collected; if it fails, the children are reaped all the same."""
    order: list[str] = []
    ran: list[float] = []
    got = readns.in_children([["a"], ["b"]], lambda part: order.append("here") or {"a": 1},
                             lambda part: time.sleep(0.2) or {"b": (os.getpid(), time.monotonic())},
                             lambda: order.append(f"meanwhile in {os.getpid()}, {len(started)} child")
                             or ran.append(time.monotonic()))
    assert order == ["here", f"meanwhile in {os.getpid()}, 1 child"] and got["b"][0] != os.getpid()
    assert ran[0] < got["b"][1]  # before the child was done, not after its share was collected

    def fails():
        raise KernelError(None, errno.EIO, "meanwhile failed")

    started.clear()
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="meanwhile failed"):
        readns.in_children([["a"], ["b"]], lambda part: {}, lambda part: time.sleep(30) or {}, fails)
    assert reaped(started) and time.monotonic() - t0 < 10
