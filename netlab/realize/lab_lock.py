"""A lab's lock: one flock per lab (``lock`` in its state directory) keeps two commands from changing the same
lab's kernel objects at once; ``up --watch`` holds a second (``watcher``), one watcher per lab.

The lock file names its holder so that a waiting command can say whom it waits for (lockfile.holder checks the
name against the kernel's locks). A lab's lock outlives nothing of the lab: ``down`` deletes the directory while
it holds it, and a waiter then takes the lock again on the file at the path.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from typing import Callable, Iterator

from netlab import lockfile, signals
from netlab.errors import EnvironmentNotReady, LabBusy, NetlabError
from netlab.realize import lab_folder, lab_removal, state_dir
from netlab.realize.state_dir import LOCK_FILE, lab_dir, state_dir_error

# A wait for the lab's lock shorter than this is not told: who asks whether the lab is held (`up --watch` each
# round, lab_lock_holder) takes the lock shared for a moment, and a command that tried then waited microseconds.
QUIET_FOR = 0.25
# A quiet lock (the watcher's own, whose line says each wait) keeps a wait that outlasted its next try (20 ms on,
# lockfile.take): a question's moment never does, a command holding the lab does.
MOMENT = 0.01
# The lab's lock this process holds, by lab: the fd a launched echo server shares until it listens (held_fd).
_HELD: dict[str, int] = {}


class LabLock:
    """A per-lab flock; the lock file names the holder so others can say who.

    ``down`` deletes the lab's directory, lock file included, while it holds
    the lock. A command waiting on that file then locks a file nobody else
    will ever open, while a newcomer locks the new file at the path: both
    would proceed. So after ``flock`` the locked fd must still be the file at
    the path; if not, the lock is taken again on the file that is there now.

    A waiting command names the holder only as the kernel shows it (lockfile.holder): the file's text outlives
    its writer, and a shared ``flock`` (``up --watch`` asking whether the lab is held) writes none.

    ``quiet``: the wait is not told (lockfile.tell) but kept: ``waited`` (seconds, None when it did not wait) and
    ``waited_for`` (who held the lab then, None when the kernel did not say), which ``up --watch`` says in its line.

    The lock held for a moment by someone who asked whether the lab is held (a watcher's round) is no command to
    wait for: a wait is told once it has lasted :data:`QUIET_FOR` (then at once), kept once it outlasted the next
    try (:data:`MOMENT`; a watcher's line says a repair's wait of 0.1 s).
    """

    def __init__(self, lab: str, command: str = "netlab", wait: float = 60.0, quiet: bool = False):
        self.lab, self.command, self.wait, self.quiet = lab, command, wait, quiet
        self.fd: int | None = None
        self.waited: float | None = None
        self.waited_for: str | None = None

    def __enter__(self) -> "LabLock":
        start = time.monotonic()

        def waiting(holder: str) -> str:
            self.waited_for = None if holder == lockfile.UNKNOWN else holder
            self.waited = 0.0
            return f"waiting for {holder} to release lab {self.lab}"

        try:
            self.fd, _ = _lock_lab_file(self.lab, LOCK_FILE, start + self.wait, waiting=waiting,
                                        quiet_for=MOMENT if self.quiet else QUIET_FOR,
                                        busy=lambda holder: LabBusy(f"lab {self.lab} is in use by {holder}; "
                                                                    "try again when it finishes"),
                                        say=(lambda text: None) if self.quiet else None)
            self.waited = None if self.waited is None else time.monotonic() - start
            # for the others' "waiting for", and for what a lab its holder left halfway says of it (interrupted.py)
            lockfile.name_holder(self.fd, f"pid {os.getpid()} ({self.command})", program=True)
            _HELD[self.lab] = self.fd
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM) or refused as it made the lab's folder or lock file, or took it: the folder
            # of a lab that is not up was left empty, or with the lock alone (`netlab list` named it)
            with signals.handled(signal.SIG_IGN):
                if self.fd is not None:
                    self.__exit__()
                else:
                    _drop_if_unheld(self.lab)
                    state_dir.drop_root_if_made()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            if _HELD.get(self.lab) == self.fd:
                del _HELD[self.lab]
            with signals.handled(signal.SIG_IGN):  # a folder left half removed (empty) is listed by nobody
                _drop_if_only_lock(self.lab, self.fd)
                os.close(self.fd)
                self.fd = None
                state_dir.drop_root_if_made()  # made for this lock alone: a command that changed nothing leaves none


def held_fd(lab: str) -> int | None:
    """The fd of lab ``lab``'s lock while this process holds it (LabLock), else None. A process given a dup of it
    holds the lab with it (one flock, on the open file, not the process): the lab's echo server, while it starts
    (workload/launch.py)."""
    return _HELD.get(lab)


def lab_lock_holder(lab: str, now: bool = True) -> str | None:
    """Who holds the lab's lock ("pid N (netlab up)"): ``now``, as the kernel shows it (lockfile.holder_of), None
    when nobody does; else who took it last (the text stays once the lock is released), None when nobody ever did.
    Asked without waiting, and never making the lab's directory or lock file: ``up --watch`` asks it of a lab a
    ``down`` may take. The shared flock it asks with is held for a moment: a command that tries the lab's lock then
    retries, and says nothing (LabLock's QUIET_FOR)."""
    if not now:
        return lab_lock_last(lab)[0]
    fd = _open_lock(lab)
    if fd is None:
        return None
    try:
        try:  # a shared lock conflicts with the holder's exclusive one; closing the fd releases it
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return lockfile.holder_of(fd)  # as the kernel shows it: the file's text may name a process gone
    except OSError:
        return None
    finally:
        os.close(fd)


def lab_lock_last(lab: str) -> tuple[str | None, str | None]:
    """Who took the lab's lock last ("pid N (netlab up)"), and the command line of the program that was when it
    was not the netlab program but a Python program using netlab's API (lockfile.name_holder): None for each when
    not said, or the lab has no lock file."""
    fd = _open_lock(lab)
    if fd is None:
        return None, None
    try:
        return lockfile.named(os.pread(fd, 400, 0))
    except OSError:
        return None, None
    finally:
        os.close(fd)


def _open_lock(lab: str) -> int | None:
    """The lab's lock file opened to read, never made; None when there is none."""
    try:
        return os.open(os.path.join(lab_dir(lab, create=False), LOCK_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, NetlabError):
        return None


def lab_lock_stamp(lab: str) -> tuple[int, int, int] | None:
    """The lab's lock file as it stands (inode, change time, size), changed by each command that takes the lock
    (it writes its name there): ``up --watch`` tells by it that another command held the lab since it last looked.
    None when the lab has no lock file. Only a ``stat``: no lock taken, nothing made."""
    try:
        st = os.stat(os.path.join(lab_dir(lab, create=False), LOCK_FILE))
    except (OSError, NetlabError):
        return None
    return st.st_ino, st.st_ctime_ns, st.st_size


@contextlib.contextmanager
def unheld(lab: str) -> Iterator[bool | None]:
    """Whether nobody is at work on the lab, kept true for the body: True with the lab's lock taken shared (no
    ``up`` or ``down`` changes the lab, nor its state, until the body ends: one that tries the lock waits that
    moment out without a word, QUIET_FOR), False when someone holds it (or the file at the path changed: a
    ``down`` removed the folder meanwhile), None when the lab has no lock file (no folder). Never waits, never
    makes the folder or the file: ``list`` reads a lab's state and judges it so, as one consistent read."""
    with _locked_if_free(lab, fcntl.LOCK_SH) as free:
        yield free


@contextlib.contextmanager
def taken_if_free(lab: str) -> Iterator[bool]:
    """The lab's lock taken (exclusive) for the body when nobody holds it now: True; False when someone does (this
    process too: a flock is per open file), when the lab has no lock file (no folder), or when the file at the path
    changed meanwhile (a ``down`` removed the folder). Never waits, never makes the folder or the file, names no
    holder: a reader that records what it found (status: a pod's first CHECK since its ADD, cni/first_check.py)
    writes the lab's state only under it. A command that tries the lock meanwhile waits that moment out without a
    word (QUIET_FOR)."""
    with _locked_if_free(lab, fcntl.LOCK_EX) as free:
        yield bool(free)


@contextlib.contextmanager
def _locked_if_free(lab: str, how: int) -> Iterator[bool | None]:
    """The lab's lock file taken ``how`` (LOCK_SH or LOCK_EX) without waiting: True, held for the body; False when
    someone holds it or the file at the path changed meanwhile; None when there is no lock file. Never makes it."""
    try:
        path = os.path.join(lab_dir(lab, create=False), LOCK_FILE)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, NetlabError):
        yield None
        return
    try:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
            free = _same_file(fd, path)
        except OSError:  # BlockingIOError: held
            free = False
        yield free
    finally:
        os.close(fd)


def _open_lab_file(lab: str, name: str) -> tuple[int, str]:
    """Open (or create) one of a lab's lock files, making the lab's directory again if a holder removed it."""
    for _ in range(100):
        directory = lab_dir(lab)
        path = os.path.join(directory, name)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), path
        except FileNotFoundError:
            state_dir.uncheck(directory)  # removed since we checked it: make it again
        except OSError as exc:
            raise state_dir_error(path, exc) from None
    raise EnvironmentNotReady(f"{lab}: its state directory keeps disappearing; is another netlab removing it?")


def _lock_lab_file(lab: str, name: str, deadline: float, waiting: Callable[[str], str],
                   busy: Callable[[str], Exception], say: Callable[[str], None] | None = None,
                   quiet_for: float = 0.0) -> tuple[int, str]:
    """An exclusive flock on one of a lab's lock files (waiting until ``deadline``, as lockfile.take; the wait told
    once it has lasted ``quiet_for`` from the first try: the time the folder and the file took to make is no wait, and
    on a loaded machine it made a question's moment a wait to tell), checked to be the file at the path: ``down``
    deletes the lab's directory, lock files included, while it holds the lab's lock, and a command that waited on the
    deleted file would lock a file nobody else opens."""
    told = False
    tell_at: float | None = None
    while True:
        fd, path = _open_lab_file(lab, name)
        if tell_at is None:
            tell_at = time.monotonic() + quiet_for
        try:
            told = lockfile.take(fd, deadline, told=told, waiting=waiting, busy=busy, say=say,
                                 quiet_for=max(0.0, tell_at - time.monotonic()))
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd, path
        os.close(fd)  # locked a deleted file: its holder removed the lab; lock the one there now


class WatcherLock:
    """One ``netlab up --watch`` per lab. A second would repair the same drift as the first, each restarting
    exited containers by a back-off of its own: it is refused at once, naming the first.

    An exclusive flock on ``watcher`` in the lab's directory, taken without waiting and held until the
    watcher ends, checked to be the file at the path as LabLock's is (``down`` removes the directory of a
    watched lab: that watcher ends, and the next ``up --watch`` locks a new file). The watcher removes the
    file when it ends, under the lab's lock, so a lab whose first ``up`` failed leaves no directory.
    """

    FILE = "watcher"

    def __init__(self, lab: str):
        self.lab = lab
        self.fd: int | None = None
        self.path = ""

    def __enter__(self) -> "WatcherLock":
        self.fd, self.path = _lock_lab_file(
            self.lab, self.FILE, time.monotonic(), waiting=lambda holder: "",
            busy=lambda holder: LabBusy(f"lab {self.lab} is already watched by {holder}; one watcher per lab: "
                                        "stop that one (Ctrl-C) first"))
        lockfile.name_holder(self.fd, f"pid {os.getpid()} (netlab up --watch)")
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, self.path):  # not removed by a `down` of the lab while it was watched
                with LabLock(self.lab, "netlab up --watch", wait=2.0):
                    if _same_file(fd, self.path):
                        os.unlink(self.path)
        except (LabBusy, OSError):
            pass  # left for `down`, which removes the lab's directory: its flock is free now
        finally:
            os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    """The open file ``fd`` is the one at ``path`` now (not deleted, not replaced)."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _drop_if_unheld(lab: str) -> None:
    """As its lock's holder leaves the lab's folder (_drop_if_only_lock), its lock taken for a moment if free;
    a folder whose lock file is not made yet goes if it is empty."""
    path = os.path.join(state_dir.STATE_ROOT, lab)
    state_dir.uncheck(path)
    if lab_folder.not_ours(path):
        return  # a folder netlab did not make: nothing in it is touched
    try:
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            if os.listdir(path) == [lab_folder.MARK_FILE]:
                lab_removal.drop(state_dir.STATE_ROOT, lab, (lab_folder.MARK_FILE,))  # no lock of ours: mark only
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _drop_if_only_lock(lab, fd)
    os.close(fd)


def _drop_if_only_lock(lab: str, held: int) -> None:
    """A lab directory that holds nothing but the lock and the mark (an up that failed before its first state
    write, a status of a lab that is not up) is removed by the lock's holder (``held``: its locked fd), taken off
    the lab's path in one step (lab_removal.drop). A lock at the path that is not the one held is another
    command's (a ``down`` took the folder of ours away, and that command made its own): its folder is left."""
    path = os.path.join(state_dir.STATE_ROOT, lab)
    try:
        names = set(os.listdir(path))
        if LOCK_FILE not in names or names - {LOCK_FILE, lab_folder.MARK_FILE} or lab_folder.not_ours(path) \
                or not _same_file(held, os.path.join(path, LOCK_FILE)):
            return
        lab_removal.drop(state_dir.STATE_ROOT, lab)
    except OSError:
        return
    state_dir.uncheck(path)
