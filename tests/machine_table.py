"""One lock on the machine's neighbour (ARP) table for the root tests of one pytest run (its xdist workers).

The kernel keeps one ARP table for all network namespaces: its counters (/proc/net/stat/arp_cache: entries,
forced_gc_runs, table_fulls) and its gc_thresh limits are the machine's. A test that asserts them (a probe's
``neighbour_table`` report) also counts what the other pytest-xdist worker's tests resolve meanwhile: with
``--dist worksteal`` any test may run beside it. Such a test holds the table alone (``hold(exclusive=True)``);
every other root test holds it shared. A test asking for it alone closes a gate first, so the shared holders
that come after it wait behind it (flock(2) alone would let them pass it for as long as they overlap).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

TABLE = "netlab-tests-neighbour-table.lock"
GATE = "netlab-tests-neighbour-table.gate"


def _open(folder: str, name: str) -> int:
    return os.open(os.path.join(folder, name), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextlib.contextmanager
def hold(exclusive: bool, folder: str) -> Iterator[None]:
    """The machine's neighbour table, alone (``exclusive``) or shared with the other tests that hold it shared
    (the lock's files in ``folder``: the one the run's processes share)."""
    gate, table = _open(folder, GATE), _open(folder, TABLE)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(table, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(table)  # releases the flock
        os.close(gate)


@contextlib.contextmanager
def alone(name: str, folder: str) -> Iterator[None]:
    """Something else of the machine's that tests share (``name``: its lock file's, in ``folder``) for one test
    alone, against the other tests that ask for it by the same name: e.g. /var/lib/cni, which one test's plugin
    writes in while another asserts it unchanged."""
    fd = _open(folder, f"netlab-tests-{name}.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _locks(folder: str) -> list[list[str]]:
    """The flocks on the table's file now, as /proc/locks lists them (a waiting one's fields after its "->")."""
    st = os.stat(os.path.join(folder, TABLE))
    file = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as fh:
        rows = [line.split()[1:] for line in fh]
    return [r for r in rows if len(r) > 5 and r[-3] == file]


def waits_for(folder: str, pid: int) -> bool:
    """Whether process ``pid`` waits for the table now (its blocked flock)."""
    return any(r[0] == "->" and r[4] == str(pid) for r in _locks(folder))


def holds(folder: str, pid: int) -> bool:
    """Whether process ``pid`` holds the table now (shared or alone)."""
    return any(r[0] == "FLOCK" and r[3] == str(pid) for r in _locks(folder))
