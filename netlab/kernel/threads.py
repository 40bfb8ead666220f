"""Many namespaces' system calls in a few threads, side by side.

Reading or unmounting hundreds of namespaces is mostly the kernel's work in
system calls, which Python runs without holding the GIL: two threads keep
both cores of a small machine busy, and the waits some calls make (an unmount
waits for an RCU grace period after it let go of the mount lock) overlap.
Namespaces are per thread, so each thread enters and leaves its own.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = 2  # a machine of 2 cores is the case to serve
# An unmount spends most of its time waiting (for an RCU grace period), not
# on a core: more threads than cores overlap more of those waits
# (500 namespaces: ~0.15 s with 2 threads, ~0.03 s with 8, on 2 cores).
UNMOUNT_WORKERS = 8
# Making a namespace is ~1.1 ms of system calls, much of it waiting (the
# /run/netns entry on the file system, the kernel's set-up of the namespace):
# two threads make 300 in 0.30 s instead of 0.58 s, three no faster.
CREATE_WORKERS = 2
# A node's rules are one transaction (one iptables-restore, one nft -f) that
# cannot be split. One node per core takes 3 nodes on 2 cores in two rounds,
# with a core idle in the second; started all at once, the scheduler shares
# both cores among the three (1,000 Services on 3 nodes, scripts/bench_services.py:
# nft full sync 0.84 -> 0.58 s, iptables 0.85 -> 0.67 s, iptables partial sync
# 117 -> 73 ms). At most this many at once, for memory: an nft full sync of
# 1.7 MB holds ~50 MB while it parses.
TRANSACTION_WORKERS = 8


def transaction_workers(transactions: int) -> int:
    """How many namespaces' rule transactions to run at once: all of them, up to
    TRANSACTION_WORKERS (or the core count, on a machine with more cores)."""
    return max(1, min(transactions, max(TRANSACTION_WORKERS, os.cpu_count() or 1)))


def side_by_side(fn: Callable[[T], R], items: list[T], workers: int | None = None,
                 stop_on_error: bool = False) -> dict[T, R]:
    """``fn(item)`` of every item, by ``workers`` threads (the caller's among them; each item in one);
    results by item, in the items' order. The first exception is raised once every thread is done:
    even when a signal's exception interrupts the caller's wait, the threads are waited for (they stop at
    their next item), so nothing of this call runs on behind a caller that moved on to a rollback.
    ``stop_on_error``: after one failure, the other threads stop at their next item too."""
    results: dict = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    workers = WORKERS if workers is None else workers
    parts = [items[i::workers] for i in range(max(1, workers))]

    def work(part: list[T]) -> None:
        try:
            for item in part:
                if stop.is_set():
                    return
                results[item] = fn(item)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)
            if stop_on_error:
                stop.set()

    threads = [threading.Thread(target=work, args=(part,), name="netlab-side") for part in parts[1:] if part]
    try:
        # Started here, inside the try: a signal's exception can land in Thread.start(), which waits for the
        # thread to run; the threads already running are then stopped at their next item and waited for.
        for t in threads:
            t.start()
        work(parts[0])
    except BaseException:
        stop.set()
        raise
    finally:
        for t in threads:
            _wait_for(t, stop, errors)
    if errors:
        raise errors[0]
    return {item: results[item] for item in items}


def _wait_for(t: threading.Thread, stop: threading.Event, errors: list[BaseException]) -> None:
    """Until ``t`` has ended: a signal's exception meanwhile stops the threads at their next item and is kept for
    the caller. Its check is inside the catch too: a second signal landing there let the caller's rollback run
    while the thread still made a namespace, left behind in no state."""
    while True:
        try:
            if not t.is_alive():
                return
            t.join()
        except BaseException as exc:  # noqa: BLE001 - a signal's exception: stop them, wait, raise it
            stop.set()
            errors.append(exc)


class Background(Generic[R]):
    """``fn(*args)`` in a daemon thread of its own, begun at once, beside the caller's work (a fresh lab's pod
    files and echo server while ``up`` makes the network; a whole lab's pod files while ``down`` takes it
    down). :meth:`join` waits, then gives its result, or raises in the caller's thread what it raised (a
    thread's exception would otherwise be printed and lost)."""

    def __init__(self, fn: Callable[..., R], *args: object, name: str):
        self._result: R | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., R], args: tuple) -> None:
        try:
            self._result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again by join()
            self._error = exc

    def join(self) -> R:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # fn returned it
