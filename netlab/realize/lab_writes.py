"""Writes under a lab's folder that stay in netlab's own folders on the lab folder's own mount.

A lab's ``logs/``, ``cni/``, ``nodes/`` (or ``dns/``) may be a user's: a symlink to a folder of theirs, or a bind
mount of one (to keep the logs past ``down``). ``down`` removes nothing in such a folder (lab_removal.remove_own);
nor does ``up`` write through it: every write below the lab's folder opens each folder on the way fd-relative
(``O_NOFOLLOW``), from the lab's folder down, and each must be on the lab folder's mount (its mount id: a bind mount
of the same file system has the same st_dev): lab_folder.open_folder, the one rule ``down``'s clean-ups share. A
folder that is not is named with why, in lab_folder's words (:data:`lab_folder.A_SYMLINK`,
:data:`lab_folder.ON_A_MOUNT`, :data:`lab_folder.NOT_A_FOLDER`), and nothing is written there; the caller says what
it did instead in one line (containers' output to /dev/null, the Flannel files not written, an ``up`` of a CNI lab
refused before any change).
"""

from __future__ import annotations

import contextlib
import os
import stat

from netlab.errors import NetlabError
from netlab.realize import lab_folder
from netlab.realize.state_dir import lab_dir

FILE = os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """A folder on the way is not netlab's to write in: ``path`` (absolute), ``why`` (lab_folder's words)."""

    def __init__(self, path: str, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def split(path: str) -> tuple[str, list[str]]:
    """``path`` below the state folder as (its lab, the names below the lab's folder); ValueError when it is not
    below a lab's folder there."""
    from netlab.realize import state_dir

    rel = os.path.relpath(os.path.abspath(path), state_dir.STATE_ROOT)
    parts = [p for p in rel.split(os.sep) if p]
    if len(parts) < 2 or any(p in (".", "..") for p in parts):
        raise ValueError(f"{path} is not below a lab's folder of {state_dir.STATE_ROOT}")
    return parts[0], parts[1:]


def open_dir(lab: str, names: list[str], create: bool = True, mode: int = 0o700) -> int | None:
    """The folder ``names`` (one name per level) of the lab's folder, opened fd-relative (the caller closes it):
    each folder on the way is made when missing (``create``, ``mode``) and opened as lab_folder.open_folder opens
    it. None when it (or the lab's folder) is not there and ``create`` is off. Raises :class:`Refused` for a
    folder on the way that is a symlink, a mount point or not a folder; OSError as mkdir and open do."""
    from netlab.realize import state_dir

    root = state_dir.STATE_ROOT
    try:
        fd = lab_folder.open_lab(root, lab)
    except FileNotFoundError:
        if not create:
            return None
        raise
    return _walk(fd, os.path.join(root, lab), names, create, mode)


def open_dir_at(lab_path: str, names: list[str]) -> int | None:
    """:func:`open_dir` of the lab folder ``lab_path`` (opened without following a symlink; nothing made): for a
    process that knows its lab's folder but not the state folder's name, the lab's echo server (by its control
    socket's). None when it (or a folder on the way) is not there. Raises :class:`Refused`, OSError."""
    try:
        fd = os.open(lab_path, lab_folder.DIR)
    except FileNotFoundError:
        return None
    return _walk(fd, lab_path, names, False, 0o700)


def _walk(fd: int, where: str, names: list[str], create: bool, mode: int) -> int | None:
    """:func:`open_dir`'s walk from the lab's folder, open as ``fd`` (closed here)."""
    mnt = lab_folder.lab_mount(fd)
    try:
        for name in names:
            where = os.path.join(where, name)
            sub, why = lab_folder.open_folder(fd, name, mnt, create, mode)
            if why is not None:
                raise Refused(where, why)
            if sub is None:
                return None
            os.close(fd)
            fd = sub
        out, fd = fd, -1
        return out
    finally:
        if fd >= 0:
            os.close(fd)


def problem(lab: str, names: list[str]) -> Refused | None:
    """Why the lab's folder ``names`` may not be written in (a folder on the way is a symlink, another mount, not
    a folder): the :class:`Refused`; None when it may (or it, or the lab's folder, is not there)."""
    fd, refused = _opened(lab, names)
    if fd is not None:
        os.close(fd)
    return refused


def _opened(lab: str, names: list[str]) -> tuple[int | None, Refused | None]:
    """The lab's folder ``names`` opened as :func:`open_dir` opens it, not made: (fd, None); (None, why) when it is
    refused; (None, None) when it (or the lab's folder) is not there or cannot be opened."""
    try:
        return open_dir(lab, names, create=False), None
    except Refused as exc:
        return None, exc
    except OSError:
        return None, None


def open_file(path: str, flags: int, mode: int = 0o600, dir_mode: int = 0o700) -> int:
    """Open ``path``, a file below a lab's folder, fd-relative: its folders as :func:`open_dir` makes and opens
    them, the file itself never through a symlink (``O_NOFOLLOW``). Raises :class:`Refused`, OSError."""
    lab, names = split(path)
    fd = open_dir(lab, names[:-1], mode=dir_mode)
    assert fd is not None  # made when missing
    try:
        return os.open(names[-1], flags | FILE, mode, dir_fd=fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o600, dir_mode: int = 0o700) -> None:
    """Write ``path``, a file below a lab's folder, as state_dir.write_atomic does (a temporary file beside it,
    fsynced, renamed over it), in its folder opened as :func:`open_dir` opens it: a symlink at its name is
    replaced, never followed. Raises :class:`Refused`; state_dir's errors for the write itself."""
    from netlab.realize import state_dir

    lab, names = split(path)
    try:
        fd = open_dir(lab, names[:-1], mode=dir_mode)
    except OSError as exc:
        raise state_dir._write_error(path, exc) from None
    assert fd is not None
    name = names[-1]
    tmp = os.path.basename(state_dir.temp_path(path))
    try:
        try:
            tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | FILE, mode, dir_fd=fd)
        except OSError as exc:
            raise state_dir._write_error(path, exc) from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(tfd, view):]
                os.fchmod(tfd, mode)
                os.fsync(tfd)
            finally:
                os.close(tfd)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise state_dir._write_error(path, exc) from None
    finally:
        os.close(fd)


def tree_problem(lab: str, names: list[str]) -> Refused | None:
    """:func:`problem` for the lab's folder ``names`` and everything below it: a symlink anywhere in it (to a file
    too: a program netlab runs there, CNI's host-local, follows one as it writes its leases) or a folder on another
    mount; None when there is none (or the folder is not there)."""
    fd, refused = _opened(lab, names)
    if fd is None:
        return refused
    from netlab.realize import state_dir

    try:
        mnt = lab_folder.lab_mount(fd)
        return _below(fd, os.path.join(state_dir.STATE_ROOT, lab, *names), mnt)
    finally:
        os.close(fd)


def _below(fd: int, where: str, mnt: tuple[int, int | None]) -> Refused | None:
    for name in sorted(os.listdir(fd)):
        path = os.path.join(where, name)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            return Refused(path, lab_folder.A_SYMLINK)
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            sub = os.open(name, lab_folder.DIR, dir_fd=fd)
        except OSError:
            continue
        try:
            if not lab_folder.on_mount(sub, mnt):
                return Refused(path, lab_folder.ON_A_MOUNT)
            found = _below(sub, path, mnt)
            if found is not None:
                return found
        finally:
            os.close(sub)
    return None


def in_lab_dir(lab: str, name: str) -> str | None:
    """The path of file ``name`` in the lab's folder when that folder is there and netlab's; None otherwise (a
    record kept beside the state: looked for, never made with its folder)."""
    try:
        directory = lab_dir(lab, create=False)
    except (NetlabError, OSError):
        return None
    return os.path.join(directory, name) if os.path.isdir(directory) else None
