"""The lab's state directory under ``/run/netlab/<lab>/``: where it is, how it is written, its lock.

Everything a lab keeps between commands lives there: the state file
(state.py), the containers' logs and UTS namespaces, the CNI plugins'
files. The directory is root-only (0700), checked before use (not a
symlink, owned by root, not group/world writable), and every write is
atomic (write a temporary file, fsync, rename). ``/run`` is a tmpfs: a
reboot forgets the labs, as it forgets their namespaces.

One flock per lab (``lock`` in its directory) keeps two commands from
changing the same lab's kernel objects at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import stat
import time
from typing import Callable

from netlab import lockfile, signals
from netlab.errors import ApplyFailed, EnvironmentNotReady, LabBusy, NetlabError, UsageError
from netlab.model.naming import lab_name_problem

DEFAULT_STATE_ROOT = "/run/netlab"
# An empty NETLAB_STATE_DIR is unset (the shell's `NETLAB_STATE_DIR=$MAYBE`), as an empty $NETLAB_LAB names no lab:
# never the working directory. Every reader of the variable goes through this one (the doctor too).
STATE_ROOT = os.environ.get("NETLAB_STATE_DIR") or DEFAULT_STATE_ROOT
# The source of a lab's tmpfs of UTS pins on <state folder>/<lab>/uts (workload/uts.py): /proc/self/mountinfo
# shows it with the folder's path, which is how a lab's folder is found from its namespaces (realize/tags.py).
PINS_FS = "netlab-uts"
STATE_VERSION = 1  # the format of state.json (realize/state_schema.py checks it)
STATE_FILE = "state.json"  # a lab's state, in its directory (realize/state.py reads and writes it)
LOCK_FILE = "lock"  # the lab's lock (LabLock), in its directory, the last thing of it to go
TEMP_INFIX = ".tmp."  # state.json.tmp.<pid>: write_atomic's temporary file, which a SIGKILL may leave
# A wait for the lab's lock shorter than this is not told: who asks whether the lab is held (`up --watch` each
# round, lab_lock_holder) takes the lock shared for a moment, and a command that tried then waited microseconds.
QUIET_FOR = 0.25
# A quiet lock (the watcher's own, whose line says each wait) keeps a wait that outlasted its next try (20 ms on,
# lockfile.take): a question's moment never does, a command holding the lab does.
MOMENT = 0.01


def chosen_root(path: str) -> bool:
    """Whether ``path`` is a state directory the user named (NETLAB_STATE_DIR), not netlab's own /run/netlab."""
    return os.path.abspath(path) == os.path.abspath(STATE_ROOT) and \
        os.path.abspath(STATE_ROOT) != DEFAULT_STATE_ROOT


def point_elsewhere(path: str, fix: str) -> str:
    """``fix`` (remove what is at ``path``), unless ``path`` is the user's NETLAB_STATE_DIR: whatever that names
    (their home, /etc/passwd, /proc/self) is not netlab's to remove; another directory is the fix."""
    if chosen_root(path):
        return "point NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode 0700, if it is not there)"
    return fix


def _check_dir(path: str) -> None:
    """Refuse a state directory someone else could have prepared for us."""
    st = os.lstat(path)
    if st.st_uid == 0 and os.geteuid() != 0:  # root's labs, and we are not root: the cause, not "remove it"
        raise EnvironmentNotReady(f"netlab needs root: a lab is made of network namespaces, and its state in "
                                  f"{path} is root's; run it with sudo")
    if stat.S_ISLNK(st.st_mode):
        raise EnvironmentNotReady(f"{path} is a symlink; refusing to use it ({point_elsewhere(path, 'remove it')} "
                                  "and retry)")
    if not stat.S_ISDIR(st.st_mode):
        raise EnvironmentNotReady(f"{path} is not a directory; {point_elsewhere(path, 'remove it')} and retry")
    if st.st_uid != os.geteuid():
        raise EnvironmentNotReady(f"{path} is owned by uid {st.st_uid}, not by us; "
                                  f"{point_elsewhere(path, 'remove it')} and retry")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EnvironmentNotReady(f"{path} is group- or world-writable; refusing to use it (chmod 700 {path})")


_checked: set[str] = set()  # directories created or checked by this process


def state_dir_error(path: str, exc: OSError) -> EnvironmentNotReady:
    """An OS error on the state directory itself, in words: exit 3, nothing was changed."""
    where = os.path.dirname(path) or path
    if exc.errno == errno.EROFS:
        return EnvironmentNotReady(f"cannot write {path}: {where} is on a read-only file system; "
                                   "make it writable or point NETLAB_STATE_DIR at a writable directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        if os.geteuid() != 0:  # the cause, first: a program or test run without sudo
            return EnvironmentNotReady(f"netlab needs root: a lab is made of network namespaces, and its state in "
                                       f"{where} is root's (cannot write {path}); run it with sudo")
        return EnvironmentNotReady(f"cannot write {path}: permission denied; run it with sudo")
    return EnvironmentNotReady(f"cannot use {path}: {exc.strerror or exc}")


def ensure_dir(path: str) -> str:
    """Create (0700) or check a state directory (once per process)."""
    if path in _checked:
        return path
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise EnvironmentNotReady(f"cannot create {path}: its parent does not exist") from None
    except OSError as exc:
        raise state_dir_error(path, exc) from None
    _check_dir(path)
    _checked.add(path)
    return path


def state_root() -> str:
    return ensure_dir(STATE_ROOT)


def check_lab_name(value: str, what: str = "--lab") -> str:
    """A lab name a user typed, checked by the rule of a topology's ``name:`` before it
    becomes a path: ``--lab /etc``, ``..`` or ``.`` never reach a file operation."""
    problem = lab_name_problem(value)
    if problem:
        raise UsageError(f"{what} {problem}")
    return value


def lab_dir(lab: str, create: bool = True) -> str:
    path = os.path.join(STATE_ROOT, check_lab_name(lab, "lab name"))
    if create:
        state_root()
        return ensure_dir(path)
    if os.path.lexists(path):
        _check_dir(STATE_ROOT)
        _check_dir(path)
    return path


def state_file(lab: str, create: bool = False) -> str:
    """The path of a lab's state file (``create``: make its directory when it is missing)."""
    return os.path.join(lab_dir(lab, create=create), STATE_FILE)


class NotRegularFile(ValueError):
    """Where a lab's state file should be there is something else (a directory, a FIFO, a device)."""


def read_state_file(lab: str) -> bytes | None:
    """A lab's state file as it is on disk, never through a symlink (OSError ELOOP); None when there is
    none; NotRegularFile when something else is there. Read, not checked (realize/state_schema.py)."""
    path = state_file(lab)
    try:
        # O_NONBLOCK: opening a FIFO put there would wait for a writer forever (every command, `netlab list`, the
        # pytest plugin's start, read every lab's state); a regular file's reads ignore it
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(path)
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


class StateWriteFailed(OSError, ApplyFailed):
    """A state write did not reach the disk whole: exit 4 (an I/O error), or 3 when the disk is full (ENOSPC, a
    quota: ApplyFailed's exit code, from ``errno``).

    Also an OSError, so the features' "best effort on teardown" handlers still
    treat it as one.
    """

    def __init__(self, path: str, reason: str, code: int = errno.EIO):
        super().__init__(code, reason, path)
        self.message = (f"cannot write {path}: {reason}; free space in {os.path.dirname(path)} "
                        "(or point NETLAB_STATE_DIR at another directory)")

    def __str__(self) -> str:
        return self.message


def _write_error(path: str, exc: OSError) -> NetlabError:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return state_dir_error(path, exc)
    return StateWriteFailed(path, exc.strerror or str(exc), exc.errno or errno.EIO)


def temp_path(path: str) -> str:
    """Where :func:`write_atomic` writes ``path``'s next content before the rename: beside it, in the same
    directory (a rename never crosses file systems), named after the writing process."""
    return f"{path}{TEMP_INFIX}{os.getpid()}"



def write_atomic(path: str, data: bytes, mode: int = 0o600, point: str = "") -> None:
    """Write a file so readers see the old or the new content, never half.

    Every byte is written (os.write may write less than asked), fsynced, then
    renamed over the old file. Any failure leaves the old file and no
    temporary one, and raises StateWriteFailed (exit 4; 3 for a full disk), or
    EnvironmentNotReady (exit 3) for a read-only or forbidden directory. ``point``: a test hook's
    name for the moment the temporary file is whole and not yet renamed.
    """
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:
                    raise StateWriteFailed(path, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if point:
            from netlab.kernel import testhooks  # only where state is written: plan and validate load no kernel code

            testhooks.fault_point(point)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, StateWriteFailed):
            raise _write_error(path, exc) from None
        raise
    try:  # the rename itself reaches the disk (NETLAB_STATE_DIR may be on one)
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def forget(lab: str) -> None:
    """Remove a lab's state directory after a complete teardown.

    The state file goes after everything else but the lock: a folder that holds a run's files and no state
    file is a lab whose state was lost (ownership.lost_state), never one on its way out; a forget cut short
    leaves the state, and ``down`` again finishes it."""
    path = lab_dir(lab, create=False)
    if not os.path.isdir(path):
        return
    lock, state = os.path.join(path, LOCK_FILE), os.path.join(path, STATE_FILE)
    _remove_tree(path, os.stat(path).st_dev, keep={lock, state})
    # The lock file goes last; holders of the lock keep their open fd.
    _checked.discard(path)
    try:
        os.unlink(state)
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass  # a folder a run left without its lock goes all the same
    except OSError:
        return
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_tree(path: str, dev: int, keep: set[str]) -> None:
    """Delete a state tree without following symlinks or crossing mount points
    (a UTS namespace still pinned by a bind mount is left, and so is its directory)."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if full in keep:
            continue
        st = os.lstat(full)
        if st.st_dev != dev:
            continue  # a mount point: not ours to delete through
        if stat.S_ISDIR(st.st_mode):
            _remove_tree(full, dev, keep)
            try:
                os.rmdir(full)
            except OSError:
                pass
        else:
            os.unlink(full)


def known_labs() -> list[str]:
    """Labs with saved state, sorted."""
    if not os.path.isdir(STATE_ROOT):
        return []
    _check_dir(STATE_ROOT)
    # Anything at the state file's path (a directory, a symlink too): load_state says it is corrupt, and
    # `netlab list` shows it so, where a directory there hid the lab.
    return sorted(name for name in os.listdir(STATE_ROOT)
                  if lab_name_problem(name) is None and os.path.lexists(os.path.join(STATE_ROOT, name, STATE_FILE)))


def state_temps(names: list[str]) -> list[str]:
    """Of the names in a lab's folder, the temporary files of state writes (write_atomic's), sorted."""
    return sorted(name for name in names if name.startswith(STATE_FILE + TEMP_INFIX))


def stateless_labs() -> list[str]:
    """Lab folders without a state file, sorted: labs on their way in or out, or whose state was lost
    (state.lost_state tells)."""
    if not os.path.isdir(STATE_ROOT):
        return []
    _check_dir(STATE_ROOT)
    return sorted(name for name in os.listdir(STATE_ROOT)
                  if lab_name_problem(name) is None and os.path.isdir(os.path.join(STATE_ROOT, name))
                  and not os.path.lexists(os.path.join(STATE_ROOT, name, STATE_FILE)))


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
                                        tell_at=start + (MOMENT if self.quiet else QUIET_FOR),
                                        busy=lambda holder: LabBusy(f"lab {self.lab} is in use by {holder}; "
                                                                    "try again when it finishes"),
                                        say=(lambda text: None) if self.quiet else None)
            self.waited = None if self.waited is None else time.monotonic() - start
            lockfile.name_holder(self.fd, f"pid {os.getpid()} ({self.command})")  # for the others' "waiting for"
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM) or refused as it made the lab's folder or lock file, or took it: the folder
            # of a lab that is not up was left empty, or with the lock alone (`netlab list` named it)
            with signals.handled(signal.SIG_IGN):
                if self.fd is not None:
                    self.__exit__()
                else:
                    _drop_if_unheld(self.lab)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            with signals.handled(signal.SIG_IGN):  # a folder left half removed (empty) is listed by nobody
                _drop_if_only_lock(self.lab)
                os.close(self.fd)
                self.fd = None


def lab_lock_holder(lab: str, now: bool = True) -> str | None:
    """Who holds the lab's lock ("pid N (netlab up)"): ``now``, as the kernel shows it (lockfile.holder_of), None
    when nobody does; else who took it last (the text stays once the lock is released), None when nobody ever did.
    Asked without waiting, and never making the lab's directory or lock file: ``up --watch`` asks it of a lab a
    ``down`` may take. The shared flock it asks with is held for a moment: a command that tries the lab's lock then
    retries, and says nothing (LabLock's QUIET_FOR)."""
    try:
        fd = os.open(os.path.join(lab_dir(lab, create=False), LOCK_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (OSError, NetlabError):
        return None
    try:
        if now:
            try:  # a shared lock conflicts with the holder's exclusive one; closing the fd releases it
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                return lockfile.holder_of(fd)  # as the kernel shows it: the file's text may name a process gone
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or None
    except OSError:
        return None
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
            _checked.discard(directory)  # removed since we checked it: make it again
        except OSError as exc:
            raise state_dir_error(path, exc) from None
    raise EnvironmentNotReady(f"{lab}: its state directory keeps disappearing; is another netlab removing it?")


def _lock_lab_file(lab: str, name: str, deadline: float, waiting: Callable[[str], str],
                   busy: Callable[[str], Exception], say: Callable[[str], None] | None = None,
                   tell_at: float = 0.0) -> tuple[int, str]:
    """An exclusive flock on one of a lab's lock files (waiting until ``deadline``, as lockfile.take; the wait told
    from ``tell_at`` on, ``time.monotonic()``), checked to be the file at the path: ``down`` deletes the lab's
    directory, lock files included, while it holds the lab's lock, and a command that waited on the deleted file
    would lock a file nobody else opens."""
    told = False
    while True:
        fd, path = _open_lab_file(lab, name)
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
    path = os.path.join(STATE_ROOT, lab)
    _checked.discard(path)
    try:
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(fd, os.path.join(path, LOCK_FILE)):
            _drop_if_only_lock(lab)
    os.close(fd)


def _drop_if_only_lock(lab: str) -> None:
    """A lab directory that holds nothing but the lock (an up that failed before its
    first state write, a status of a lab that is not up) is removed by the lock's holder."""
    path = os.path.join(STATE_ROOT, lab)
    try:
        if os.listdir(path) != [LOCK_FILE]:
            return
        os.unlink(os.path.join(path, LOCK_FILE))
        os.rmdir(path)
    except OSError:
        return
    _checked.discard(path)
