"""Probe runs take turns on a machine: the kernel's neighbour table is shared by every namespace.

A probe run sizes its budget of dynamic neighbour entries from the room the
table has when it starts (``neighbours.probe_budget``: below ``gc_thresh2``,
with a margin). Two runs started side by side (two users, pytest-xdist
workers, a script probing two labs at once) would each see the same room and
take all of it: together past ``gc_thresh2``, where the kernel's forced
garbage collection evicts other namespaces' entries, and on towards
``gc_thresh3``, where it refuses new entries and the machine drops packets.

So a run holds a machine-wide ``flock`` on :data:`LOCK_PATH` while it sizes
its budget, probes, and sweeps the entries it made; the next run then starts
from a table with room again. Only the probing waits: ``up``, ``status`` and
the rest of two runs still overlap. The file sits in ``/run`` beside the
state directories, as iptables keeps its ``/run/xtables.lock``: one path for
the machine, whatever ``NETLAB_STATE_DIR`` each run has (the table is the
kernel's, not a lab's). It names its holder, so a waiting run can say whom
it waits for.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from contextlib import contextmanager
from typing import Iterator

from netlab import lockfile
from netlab.errors import EnvironmentNotReady

LOCK_PATH = "/run/netlab-neighbours.lock"
WAIT = 300.0  # seconds a run waits for its turn; a holder's own agent is killed well before
QUIET_FOR = 1.0  # a wait shorter than this (another run's small lab) is not announced


@contextmanager
def probing_turn(lab: str, wait: float = WAIT, path: str | None = None) -> Iterator[float]:
    """Hold the machine's probing turn for the block; yields the seconds spent waiting for it.

    Where the lock file cannot be made at all (no writable ``/run``), the run
    goes on without a turn, as a lone run would: probing must not fail for it.
    """
    path = path or LOCK_PATH
    fd = _open(path)
    if fd is None:
        yield 0.0
        return
    try:
        start = time.monotonic()
        lockfile.take(fd, start + wait, quiet_for=QUIET_FOR,
                      waiting=lambda holder: f"lab {lab}: waiting for {holder} to finish: one probe runs at a "
                                             "time on a machine (they share its neighbour table)",
                      busy=lambda holder: EnvironmentNotReady(
                          f"lab {lab}: {holder} has been probing for over {wait:.0f} s; one probe runs at a "
                          "time on a machine (they share its neighbour table); try again when it finishes"))
        waited = time.monotonic() - start
        lockfile.name_holder(fd, f"pid {os.getpid()} (netlab probe of lab {lab})")
        yield waited
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def holder(path: str | None = None) -> str | None:
    """Who holds the machine's probing turn now, as the lock file names them; None when nobody does.

    Only looks: the file is opened read-only and never made, and a shared
    ``flock`` taken without waiting tells whether an exclusive one is held
    (held for an instant only; a run about to take its turn tries again 20 ms
    later).
    """
    path = path or LOCK_PATH
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None  # no file (no probe ran since boot), or not one to trust
    try:
        if not _ours(os.fstat(fd)):
            return None  # not a lock file of ours: its text names nobody we know
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lockfile.holder_of(fd)
        return None
    finally:
        os.close(fd)  # also lets go of the shared flock


def _open(path: str) -> int | None:
    """The lock file, made if need be (0600, never through a symlink); None where it cannot be made."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EROFS, errno.EACCES, errno.EPERM):
            return None  # no place for it here
        if exc.errno == errno.ELOOP:
            raise EnvironmentNotReady(f"{path} is a symlink; refusing to use it (remove it and retry)") from None
        raise EnvironmentNotReady(f"cannot use {path}: {exc.strerror or exc} (remove it and retry)") from None
    st = os.fstat(fd)
    if not _ours(st):
        os.close(fd)
        raise EnvironmentNotReady(f"{path} is not a regular file of ours (uid {st.st_uid}); "
                                  "refusing to use it (remove it and retry)")
    return fd


def _ours(st: os.stat_result) -> bool:
    """A regular file of this user's: one a run of ours made (never a device, a FIFO, a stranger's file)."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
