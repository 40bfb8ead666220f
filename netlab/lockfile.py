"""Lock files that name their holder: taken with a bounded wait, and a waiting command says whom it waits for.

Two locks are made of them: a lab's (``realize/lab_lock.LabLock``: one
command changes a lab at a time) and the machine's probing turn
(``probe/turns.py``: one probe fills the shared neighbour table at a time).
The lock is an exclusive ``flock`` on an open file, so it goes when its
holder's descriptor closes, also when the holder is killed; the file's text
is only the holder's name, for the others' messages. That text outlives the
lock (it names who took it last), and a process that takes a shared ``flock``
to ask whether the lock is held (``up --watch``, ``probe``) writes no name:
so a name is said only once the kernel shows that process holding a lock on
the file (its ``/proc/PID/fdinfo``), else the kernel's holder is named
(``/proc/locks``), else nobody.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import logging

# Whom a wait is told to. The netlab program prints "netlab: waiting for ..." on its standard error
# (launch.main sets this); in a library caller's program standard error is not netlab's to write on, and
# the wait goes to logging's logger "netlab" at WARNING: the program's own handlers, or pytest's captured
# log of a test that waited, and nothing at all when the program configured no logging.
PRINT_WAITS = False
LOGGER = "netlab"
# A lock's file names its holder on its first line ("pid N (netlab up)"); a holder that is not the netlab program
# (a Python program using netlab's API: a pytest worker's fixture) adds its command line on a second, after this,
# so that what it left, killed, is said of the program that ran, not of a `netlab up` (realize/interrupted.py).
# launch.main sets IN_PROGRAM.
IN_PROGRAM = False
PROGRAM = "program: "


def take(fd: int, deadline: float, waiting: Callable[[str], str], busy: Callable[[str], Exception],
         told: bool = False, quiet_for: float = 0.0, say: Callable[[str], None] | None = None) -> bool:
    """``flock`` ``fd`` exclusively, polling until ``deadline`` (``time.monotonic()``).

    Once it has waited ``quiet_for`` seconds it tells ``waiting(holder)`` (to ``say``, by default
    :func:`tell`), once (``told``: already told); at the deadline it raises
    ``busy(holder)``. Returns ``told``. It tries once more after its first pause whatever the deadline: a lock
    held for a moment (``up --watch`` asks whether the lab is held by taking its lock shared) is not a busy lab,
    also for ``--wait 0``.
    """
    tell_at = time.monotonic() + quiet_for
    tries = 0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return told
        except BlockingIOError:
            tries += 1
            past = time.monotonic() >= deadline  # then only the one more try: no wait to tell of
            if past and tries > 1:
                raise busy(holder_of(fd)) from None
            if not told and not past and time.monotonic() >= tell_at:
                (say or tell)(waiting(holder_of(fd)))
                told = True
            time.sleep(0.02)


def name_holder(fd: int, text: str, program: bool = False) -> None:
    """Write who holds the lock into its file (a full disk only loses the name): ``text``, and with ``program``, in
    a program that is not netlab's own, its command line (:data:`PROGRAM`)."""
    if program and not IN_PROGRAM:
        text = f"{text}\n{PROGRAM}{_command_of(os.getpid(), 100)}"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{text}\n".encode(), 0)
    except OSError:
        pass


def named(raw: bytes) -> tuple[str | None, str | None]:
    """The holder a lock file's text names ("pid N (netlab up)"), and the command line of the program it ran in
    when that was not the netlab program (None: netlab's own, or not said)."""
    lines = raw.decode(errors="replace").splitlines()
    name = lines[0].strip() if lines else ""
    program = lines[1].removeprefix(PROGRAM).strip() if len(lines) > 1 and lines[1].startswith(PROGRAM) else ""
    return name or None, program or None


UNKNOWN = "another netlab process"  # a holder the kernel does not name


def holder_of(fd: int) -> str:
    """The holder's name (:func:`holder`), or a generic one (UNKNOWN)."""
    return holder(fd) or UNKNOWN


def holder(fd: int) -> str | None:
    """Who holds a lock on the file of ``fd`` now: its file's text ("pid N (netlab up)") when the kernel shows
    process N holding a lock on it; else "pid M (its command line)" when the kernel shows one process holding it
    (the text is stale: a shared ``flock``'s holder writes none, and a new holder writes its own a moment after it
    took the lock); else None: nobody holds it now, or the kernel does not say who."""
    try:
        st = os.fstat(fd)
        text = named(os.pread(fd, 400, 0))[0] or ""
    except OSError:
        return None
    m = re.match(r"pid (\d+) ", text)
    if m is not None and _holds(int(m.group(1)), st):
        return text
    pids = {pid for pid in _lockers(st.st_ino) if _holds(pid, st)}
    if len(pids) != 1:
        return None
    pid = pids.pop()
    command = _command_of(pid)
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def _lockers(ino: int) -> list[int]:
    """The pids /proc/locks names as holding a ``flock`` on a file of inode number ``ino`` (the device it names
    is not the one ``stat`` says on every file system: the caller checks each pid's own descriptors)."""
    try:
        with open("/proc/locks") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 4606 fe:00:2148777 0 EOF"; "1: -> FLOCK ..." waits
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(ino):
            if fields[4].isdigit() and int(fields[4]) > 0:  # 0: a process outside our pid namespace
                out.append(int(fields[4]))
    return out


def _holds(pid: int, st: os.stat_result) -> bool:
    """Whether process ``pid`` holds a ``flock`` on the file ``st`` (a descriptor of it whose fdinfo lists the
    lock: the kernel lists only granted locks there, never a wait)."""
    base = f"/proc/{pid}"
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        return False
    for name in fds:
        try:
            now = os.stat(f"{base}/fd/{name}")
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                continue
            with open(f"{base}/fdinfo/{name}") as fh:
                if any(line.startswith("lock:") and " FLOCK " in line for line in fh):
                    return True
        except OSError:
            continue
    return False


def _command_of(pid: int, limit: int = 80) -> str:
    """A process's command line, short, on one line: ``netlab up -t lab.yaml`` for ``python -m netlab up -t
    lab.yaml``; at most ``limit`` characters."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return ""
    if len(argv) >= 3 and argv[1:3] == ["-m", "netlab"]:
        argv = ["netlab", *argv[3:]]
    elif argv:
        argv[0] = os.path.basename(argv[0])
    text = " ".join(" ".join(argv).split())  # a ``python -c`` program's lines, one line
    return text if len(text) <= limit else text[:limit - 3] + "..."


def tell(text: str) -> None:
    """Say that a command waits: on standard error in the netlab program, else through logging."""
    if PRINT_WAITS:
        print(f"netlab: {text}", file=sys.stderr)
        return
    logger().warning(text)


def logger() -> logging.Logger:
    """The library's logger "netlab", with a NullHandler: a program that configured no logging is told
    nothing (not Python's last-resort line on its standard error). Loaded when first used: logging costs
    the CLI's start some 6 ms, and a command that never waits has no use for it."""
    import logging

    log = logging.getLogger(LOGGER)
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    return log
