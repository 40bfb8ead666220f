"""The lab's state directory under ``/run/netlab/<lab>/``: where it is, how it is written.

Everything a lab keeps between commands lives there: the state file
(state.py), the containers' logs and UTS namespaces, the CNI plugins'
files. The directory is root-only (0700), checked before use (not a
symlink, owned by root, not group/world writable), and every write is
atomic (write a temporary file, fsync, rename). ``/run`` is a tmpfs: a
reboot forgets the labs, as it forgets their namespaces.

Its lock (``lock`` in the directory) is realize/lab_lock.py's.
"""

from __future__ import annotations

import errno
import os
import stat

from netlab.errors import (ApplyFailed, EnvironmentNotReady, NetlabError, UsageError, cwd_gone, display_path,
                           in_python_words, netlab_command)
from netlab.model.naming import lab_name_problem
from netlab.realize import lab_folder
from netlab.realize.state_name import netns_folder, not_a_line, not_text

DEFAULT_STATE_ROOT = "/run/netlab"
# An empty NETLAB_STATE_DIR is unset (the shell's `NETLAB_STATE_DIR=$MAYBE`), as an empty $NETLAB_LAB names no lab:
# never the working directory. Every reader of the variable goes through this one (the doctor too). A relative one is
# made absolute here, once, against the directory netlab starts in: the lab's echo server and its containers run
# elsewhere, and each wrote to `qr-rel/<lab>/echo.log` of its own cwd (FileNotFoundError, every container), while the
# state recorded the absolute path. abspath, not realpath: a symlink there is still refused as one (_check_dir).
# The working directory deleted, a relative one cannot be made absolute (os.path.abspath raised: a traceback of every
# command, QA q50 6): kept as given, and every command refuses it as any other unusable state folder (unreadable()).
STATE_ROOT = os.environ.get("NETLAB_STATE_DIR") or DEFAULT_STATE_ROOT


_UNRESOLVED = cwd_gone(STATE_ROOT)
if not _UNRESOLVED:
    STATE_ROOT = os.path.abspath(STATE_ROOT)
# a folder netlab cannot use: every command refuses it, and the doctor (unreadable)
_UNRESOLVED = _UNRESOLVED or not_text(STATE_ROOT) or not_a_line(STATE_ROOT) or netns_folder(STATE_ROOT)
if os.environ.get("NETLAB_STATE_DIR"):  # and the programs netlab starts (with another cwd) read the same folder
    os.environ["NETLAB_STATE_DIR"] = STATE_ROOT
PINS_FS = lab_folder.PINS_FS  # the source of a lab's tmpfs of UTS pins (workload/uts.py)
STATE_VERSION = 1  # the format of state.json (realize/state_schema.py checks it)
# The revision of that format this netlab writes: one more with each change of the state's or the topology's schema
# (tests/unit/test_state_revision.py holds it to them). A state of a later revision that this netlab's schema
# refuses is a newer netlab's (state_schema.NewerFormat), not a corrupt one.
STATE_REVISION = 7
STATE_FILE = "state.json"  # a lab's state, in its directory (realize/state.py reads and writes it)
LOCK_FILE = "lock"  # the lab's lock (lab_lock.LabLock), in its directory, the last thing of it to go
TEMP_INFIX = ".tmp."  # state.json.tmp.<pid>: write_atomic's temporary file, which a SIGKILL may leave
USE_ANOTHER = "point NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode 0700, if it is not there)"


def chosen_root(path: str) -> bool:
    """Whether ``path`` is a state directory the user named (NETLAB_STATE_DIR), not netlab's own /run/netlab."""
    return os.path.abspath(path) == os.path.abspath(STATE_ROOT) and \
        os.path.abspath(STATE_ROOT) != DEFAULT_STATE_ROOT


def point_elsewhere(path: str, fix: str) -> str:
    """``fix`` (remove what is at ``path``), unless ``path`` is the user's NETLAB_STATE_DIR: whatever that names
    (their home, /etc/passwd, /proc/self) is not netlab's to remove; another directory is the fix."""
    if chosen_root(path):
        return USE_ANOTHER
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


# Directories created or checked by this process, with the (device, inode) they had then: one removed since (a
# `netlab down` in a shell, a Lab.down() of this process) or put back by someone else is checked or made again.
_checked: dict[str, tuple[int, int]] = {}


class NotNetlabs(EnvironmentNotReady):
    """A folder where a lab's would be that netlab did not make (realize/lab_folder.py): left alone."""

    def __init__(self, path: str, why: str):
        foreign = lab_folder.foreign_beside_pins(path)
        if foreign:  # a lab's folder emptied by hand, its pins mounted, then given a file: what takes the lab down
            lab, names = os.path.basename(path), ", ".join(foreign)
            force = (f"Lab({lab!r}).down(force=True)" if in_python_words()
                     else netlab_command(f"down --lab {lab} --force"))
            super().__init__(f"{path} holds lab {lab}'s UTS pins (its uts is netlab's tmpfs {PINS_FS}: the lab's "
                             f"folder, emptied while the lab ran) beside what netlab did not write there ({names}), "
                             f"which it never removes: move {names} out of the folder, then "
                             f"`{force}` takes the lab down")
            return
        super().__init__(f"{path} is not a lab folder of netlab's ({why}); netlab leaves it alone: name the lab "
                         "otherwise, or point NETLAB_STATE_DIR at a folder of netlab's")


_above_ok: set[str] = set()  # state folders whose ancestors this process checked


def _check_above(path: str) -> None:
    """Every folder above the state folder ``path`` (lab_folder.check_ancestors), once per process."""
    if path not in _above_ok:
        lab_folder.check_ancestors(path)
        _above_ok.add(path)


def _refuse_unresolved() -> None:
    """A relative NETLAB_STATE_DIR whose working directory was deleted: refused as an unusable state folder."""
    if _UNRESOLVED:
        raise EnvironmentNotReady(f"cannot use {unreadable(STATE_ROOT)}; {USE_ANOTHER}")


def _check_root() -> None:
    """The state folder and every folder above it."""
    _refuse_unresolved()
    _check_above(STATE_ROOT)
    _check_dir(STATE_ROOT)


def _still_checked(path: str) -> bool:
    """This process checked ``path`` and it is still that very directory (not removed, nor put back since)."""
    known = _checked.get(path)
    if known is None:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and (st.st_dev, st.st_ino) == known:
        return True
    _checked.pop(path, None)  # another thread (a Lab.down() beside) may have forgotten it meanwhile
    return False


def _still_there(path: str) -> bool:
    """_check_dir of the folder ``path`` made or found just now; False when it is gone since (a down, another
    command's drop_root_if_made): it is made again."""
    try:
        _check_dir(path)
    except FileNotFoundError:
        return False
    return True


def _remember(path: str) -> tuple[int, int] | None:
    """Note the directory ``path`` as checked: its (device, inode); None when it is gone since its check (a
    ``down`` removed it)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    _checked[path] = known = (st.st_dev, st.st_ino)
    return known


def uncheck(path: str) -> None:
    """Forget that this process made or checked the directory ``path``: it was removed since (the next use checks
    it again, or makes it)."""
    _checked.pop(path, None)


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
        # root already: the modes do not bind it, so something else refused it (root_refused.py says what)
        from netlab.realize.root_refused import cause

        return EnvironmentNotReady(f"cannot write {path}: permission denied to root: {cause(path)}; or point "
                                   "NETLAB_STATE_DIR at a directory root may write")
    if path == STATE_ROOT:  # ENAMETOOLONG, ELOOP: as root_there says it
        return EnvironmentNotReady(f"cannot use {path}: {exc.strerror or exc}; {USE_ANOTHER}")
    return EnvironmentNotReady(f"cannot use {path}: {exc.strerror or exc}")


def ensure_dir(path: str) -> str:
    """Create (0700) or check a state directory (once per process, while it stays the directory it was)."""
    if _still_checked(path):
        return path
    if path == STATE_ROOT:  # nothing is made in a folder someone else could swap
        _refuse_unresolved()
        from netlab.realize.state_room import too_long  # here: `plan` and `validate` load no more than they use

        if (long := too_long(path)) is not None:  # nor in one too long for what netlab makes in it
            raise EnvironmentNotReady(f"cannot use {display_path(path)}: {long}; {USE_ANOTHER}")
        _check_above(path)
    for _ in range(100):
        made = False
        try:
            os.mkdir(path, 0o700)
            made = path == STATE_ROOT
        except FileExistsError:
            pass
        except FileNotFoundError:
            raise EnvironmentNotReady(f"cannot create {path}: its parent does not exist") from None
        except OSError as exc:
            raise state_dir_error(path, exc) from None
        if not _still_there(path):
            continue
        known = _remember(path)
        if known is None:
            continue
        if made:
            _made_root[:] = [(path, *known)]
        return path
    raise EnvironmentNotReady(f"{path} keeps disappearing; is another netlab removing it?")


def state_root() -> str:
    return ensure_dir(STATE_ROOT)


# The state folder, when this process made it (ensure_dir): a command that leaves no lab in it (`down` with nothing
# to do, a refused `up`: lab_lock drops the lab's folder its lock made) removes it again, empty, and leaves the
# filesystem as it found it (a relative NETLAB_STATE_DIR was left in the working directory). With its (device,
# inode): one removed since and made again by someone else (a long-lived process: the Python API, up --watch) is theirs.
_made_root: list[tuple[str, int, int]] = []


def drop_root_if_made() -> None:
    """Remove the state folder if this process made it, it is still that folder, and it is empty (no lab of
    anyone's in it); another process about to make its lab's folder there makes it again (_own_lab_dir)."""
    if not _made_root or _made_root[0][0] != STATE_ROOT:
        return
    try:
        st = os.lstat(STATE_ROOT)
        if (STATE_ROOT, st.st_dev, st.st_ino) == _made_root[0]:
            os.rmdir(STATE_ROOT)
    except FileNotFoundError:
        pass
    except OSError:
        return  # a lab's folder in it (this process's other lock, another command's): kept, and asked again
    _made_root.clear()
    uncheck(STATE_ROOT)


def check_lab_name(value: str, what: str = "--lab") -> str:
    """A lab name a user typed, checked by the rule of a topology's ``name:`` before it
    becomes a path: ``--lab /etc``, ``..`` or ``.`` never reach a file operation."""
    problem = lab_name_problem(value)
    if problem:
        raise UsageError(f"{what} {problem}")
    return value


def unreadable(path: str) -> str | None:
    """Why the state folder ``path`` cannot even be looked at (ENAMETOOLONG, ELOOP: a symlink loop above it), as
    "PATH: why"; None when it can (there or not). Said by every command (root_there) and the doctor alike
    (doctor_host.check_state_dir: it was a traceback there); a relative one whose working directory was deleted."""
    if _UNRESOLVED and path == STATE_ROOT:
        return f"{display_path(path)}: {_UNRESOLVED}"
    try:
        os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None


def root_there() -> bool:
    """Whether the state directory is there, refusing (exit 3, in one line, before any lab is read or judged) one
    that cannot be used: a regular file (a device, a FIFO) there as down says it (_check_dir: "X is not a directory;
    point NETLAB_STATE_DIR at a directory ..."), not as "cannot use X/<lab>/state.json: Not a directory", and never
    as "no lab is up" by ``list``; a symlink (a loop: every lab whose namespaces are tagged was called corrupt, its
    state "a symlink", with `down --force` as the way), a name the kernel refuses (ENAMETOOLONG). A folder above it
    that is not root's is refused whether the state folder is there or not (``list`` and ``status`` said "no lab"
    where ``up``, ``down`` and doctor refused it); one that is not there yet is no danger to a reader: no lab is
    there."""
    _refuse_unresolved()
    problem = lab_folder.ancestor_problem(STATE_ROOT, missing_ok=True)
    if problem:
        lab_folder.refuse_state_folder(STATE_ROOT, problem)
    if not os.path.lexists(STATE_ROOT):
        problem = unreadable(STATE_ROOT)
        if problem:
            raise EnvironmentNotReady(f"cannot use {problem}; {USE_ANOTHER}")
        return False
    try:
        _check_dir(STATE_ROOT)  # a symlink (a loop too), not a directory, not root's: refused in its one line
    except FileNotFoundError:
        return False  # removed since (another command's drop_root_if_made): no lab is there
    return True


def control_path(lab: str, create: bool = False) -> str:
    """The lab's echo server's control socket (workload/echocontrol.py), in the lab's folder."""
    return os.path.join(lab_dir(lab, create=create), "echo.sock")


def lab_dir(lab: str, create: bool = True) -> str:
    """The lab's folder: made and marked (``create``) when it is not there; NotNetlabs when a folder there is not
    netlab's (lab_folder.not_ours): nothing is read, written or removed in it."""
    path = os.path.join(STATE_ROOT, check_lab_name(lab, "lab name"))
    if create:
        state_root()
        return _own_lab_dir(path, lab)
    try:
        if not (root_there() and os.path.lexists(path)):
            return path
        _check_root()
        _check_dir(path)
    except FileNotFoundError:
        return path  # removed since (a down, drop_root_if_made): not there, as lexists would have said
    if path not in _checked:
        why = lab_folder.not_ours(path)
        if why:
            raise NotNetlabs(path, why)
    return path


def _own_lab_dir(path: str, lab: str) -> str:
    """Make the lab's folder (marked) or check the one there is netlab's."""
    if _still_checked(path):
        return path
    for _ in range(100):
        try:
            made = lab_folder.make(path, lab)
        except FileNotFoundError:
            if os.path.dirname(path) == STATE_ROOT and not os.path.lexists(STATE_ROOT):
                # the state folder, removed empty by another command's drop_root_if_made since ours checked it
                state_root()
                continue
            raise EnvironmentNotReady(f"cannot create {path}: its parent does not exist") from None
        except OSError as exc:
            raise state_dir_error(path, exc) from None
        if not _still_there(path):
            continue
        if not made:
            why = lab_folder.not_ours(path)
            if why:
                raise NotNetlabs(path, why)
            try:
                lab_folder.mark(path, lab)  # a folder of a release before the mark: marked now
            except OSError:
                pass
        if _remember(path) is not None:
            return path
        # removed between its check and now (a down): made again
    raise EnvironmentNotReady(f"{lab}: its state directory keeps disappearing; is another netlab removing it?")


def state_file(lab: str, create: bool = False) -> str:
    """The path of a lab's state file (``create``: make its directory when it is missing)."""
    return os.path.join(lab_dir(lab, create=create), STATE_FILE)


class NotRegularFile(ValueError):
    """Where a lab's state file should be there is something else (a directory, a FIFO, a device)."""


# The largest state file read. A lab of 1,000 pods (10 nodes, 50 Services) records ~1.2 MB: ~220 KB of
# namespaces, addresses and topology (measured with the fake kernel), ~1 KB a pod of containers and
# Services' records (a real 4-pod lab's state, 9 KB). A larger file is no lab's: read whole, a 100 MB
# one cost every command 1.3 GB of memory before it was found corrupt (QA q2, defect 5).
STATE_MAX = lab_folder.STATE_MAX


class StateTooLarge(ValueError):
    """A lab's state file larger than :data:`STATE_MAX`: not read (no more than STATE_MAX + 1 bytes of it)."""

    def __init__(self, path: str):
        super().__init__(f"it is larger than {STATE_MAX >> 20} MiB, more than any lab's state")


def read_state_file(lab: str) -> bytes | None:
    """A lab's state file as it is on disk, never through a symlink (OSError ELOOP); None when there is
    none; NotRegularFile when something else is there, StateTooLarge when it is larger than STATE_MAX (no more
    than that is read). Read, not checked (realize/state_schema.py)."""
    path = state_file(lab)
    try:
        # O_NONBLOCK: opening a FIFO put there would wait for a writer forever (every command, `netlab list`, the
        # pytest plugin's start, read every lab's state); a regular file's reads ignore it
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path)
        if st.st_size > STATE_MAX:
            raise StateTooLarge(path)
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(STATE_MAX + 1)  # grown since the fstat: still no more than this
        if len(raw) > STATE_MAX:
            raise StateTooLarge(path)
        return raw
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



def write_atomic(path: str, data: bytes, mode: int = 0o600, point: str = "", durable: bool = True) -> None:
    """Write a file so readers see the old or the new content, never half.

    Every byte is written (os.write may write less than asked), fsynced, then
    renamed over the old file. Any failure leaves the old file and no
    temporary one, and raises StateWriteFailed (exit 4; 3 for a full disk), or
    EnvironmentNotReady (exit 3) for a read-only or forbidden directory. ``point``: a test hook's
    name for the moment the temporary file is whole and not yet renamed. ``durable=False``: no fsync of the
    file nor of its directory (still atomic for readers, but a crash may leave the old content, an empty file
    or none): only for a file whose loss or tearing costs time, never truth (state_sum.py's sum).
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
            if durable:
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
    if not durable:
        return
    try:  # the rename itself reaches the disk (NETLAB_STATE_DIR may be on one)
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
