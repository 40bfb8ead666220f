"""One lock on the machine's neighbour (ARP) table for the root tests of one pytest run (its xdist workers).

The kernel keeps one ARP table for all network namespaces: its counters (/proc/net/stat/arp_cache: entries,
forced_gc_runs, table_fulls) and its gc_thresh limits are the machine's. A test that asserts them (a probe's
``neighbour_table`` report) also counts what the other pytest-xdist worker's tests resolve meanwhile: with
``--dist worksteal`` any test may run beside it. Such a test holds the table alone (``hold(exclusive=True)``);
every other root test holds it shared. A test asking for it alone closes a gate first, so the shared holders
that come after it wait behind it (flock(2) alone would let them pass it for as long as they overlap).

A test holds it for the whole of its run (``held_for``, from tests/integration/conftest.py's
pytest_runtest_protocol): its setup, where the labs of its module (class, session) fixtures come up when it is
their first test, its call, and its teardown, where they go down when it is their last; so no lab of the run
comes up or goes down outside it (a per-test fixture held it after the module's labs came up and let go before
they went down). Between two tests a worker holds nothing: a test alone waits for no more than the tests running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parent / "integration"
TABLE = "netlab-tests-neighbour-table.lock"
GATE = "netlab-tests-neighbour-table.gate"


def _open(folder: str, name: str) -> int:
    return os.open(os.path.join(folder, name), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)


@contextlib.contextmanager
def hold(exclusive: bool, folder: str) -> Iterator[None]:
    """The machine's neighbour table, alone (``exclusive``) or shared with the other tests that hold it shared
    (the lock's files in ``folder``: the one the run's processes share). Never twice at once by one thread: a
    shared hold that waits for the gate a test alone closed, while that test waits for it, waits for good."""
    held = _holding.__dict__.setdefault("folders", set())
    if folder in held:
        raise RuntimeError(f"the neighbour table in {folder} is held here already: a second hold would deadlock")
    held.add(folder)
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
        held.discard(folder)


_holding = threading.local()


def folder(config: pytest.Config) -> str:
    """The lock's folder: the run's temporary folder, which its xdist workers share (pytest removes it with its
    old runs)."""
    base = config._tmp_path_factory.getbasetemp()  # the tmp_path_factory fixture's, made before any fixture
    return str(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)


def root(item: pytest.Item) -> bool:
    """A root test: one of tests/integration, or marked ``root``."""
    return INTEGRATION in item.path.parents or item.get_closest_marker("root") is not None


@contextlib.contextmanager
def held_for(item: pytest.Item) -> Iterator[None]:
    """The table held for a root test's whole run (setup, call, teardown): alone when it asks for
    ``quiet_neighbour_table``, else shared."""
    if not root(item):
        yield
        return
    with hold("quiet_neighbour_table" in item.fixturenames, folder(item.config)):
        yield


@contextlib.contextmanager
def held_at_end(session: pytest.Session) -> Iterator[None]:
    """The table held (shared) while the session ends: a run stopped early (-x, a keyboard interrupt) takes its
    fixtures' labs down then, after its last test's run."""
    if any(root(item) for item in getattr(session, "items", ())):  # none in xdist's controller
        with hold(False, folder(session.config)):
            yield
    else:
        yield


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
