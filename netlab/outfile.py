"""The one way netlab opens a file a user named for its output (-w, --pcap, --junit, graph -w, the test
artifacts): never through a name someone else can point elsewhere.

netlab often runs as root, and a name such as /tmp/x.pcap is anyone's to plant: ``open(path, "wb")`` follows
a symlink another user put there and truncates what it points to (a root-owned file, /etc/shadow). The rules
are the kernel's own, whatever its sysctls say here:

* a symlink at the name is followed only when the invoking user or root owns it and no one else can write its
  folder (fs.protected_symlinks: no one else could have put it there), checked again at each link of a chain;
* an existing file another user owns in a sticky folder others can write (/tmp) is not truncated
  (fs.protected_regular: its owner, not netlab, decides what it holds);
* what is not a regular file is not written as one: a directory, a block device, a socket are refused; a FIFO
  without a reader is said (opening it would wait for ever); a character device (/dev/null, /dev/full, a
  terminal) is written as named;
* a regular file with more than one hard link is refused: writing it would change every other name too;
* the last name is opened with O_NOFOLLOW: a symlink put there after the checks fails the open.

Nothing is written (nor created, nor truncated) when a rule refuses: one line, exit 2 (the path is the
mistake); an OS error while writing is ``errors.output_unwritable``'s line (exit 3 for a full disk).
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from typing import BinaryIO

from netlab.errors import UsageError, display_path, output_unwritable

_MAX_LINKS = 40  # as the kernel's MAXSYMLINKS


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _others_write(folder: os.stat_result, uid: int) -> bool:
    """Whether someone other than ``uid`` and root can add or replace names in a folder: its owner is someone
    else, or its group or everyone may write it."""
    return folder.st_uid not in (uid, 0) or bool(folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _refuse(path: str, why: str) -> UsageError:
    return UsageError(f"cannot write {display_path(path)}: {why}; netlab writes nothing there")


def _resolve(path: str) -> tuple[str, bool]:
    """The name to open for ``path``: its symlinks followed where the rules allow (refused otherwise), and
    whether that name is a link of /proc (a descriptor's: /dev/stdout), which only the kernel can follow."""
    uid = os.geteuid()
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current, False
        except OSError as exc:
            raise output_unwritable(path, exc) from None
        if not stat.S_ISLNK(st.st_mode):
            return current, False
        folder = os.path.dirname(current)
        try:
            fst = os.stat(folder)
            target = os.readlink(current)
        except OSError as exc:
            raise output_unwritable(path, exc) from None
        where = "" if current == os.path.abspath(path) else f" (through {display_path(current)})"
        if st.st_uid not in (uid, 0):
            raise _refuse(path, f"it is a symlink{where} owned by {_user(st.st_uid)}, not by you or root")
        if _others_write(fst, uid):
            raise _refuse(path, f"it is a symlink{where} in {display_path(folder)}, a folder others can write "
                                f"(owner {_user(fst.st_uid)}, mode {stat.S_IMODE(fst.st_mode):o})")
        if os.path.realpath(folder).startswith("/proc/"):
            return current, True  # /proc/self/fd/1 -> "pipe:[123]": the descriptor's own file
        current = os.path.join(folder, target)
    raise _refuse(path, f"more than {_MAX_LINKS} symlinks")


def _check_target(path: str, name: str, st: os.stat_result) -> None:
    """Refuse what stands at ``name`` (``st``: its stat, lstat before opening, fstat after) when writing it
    would not be writing the user's own file."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise _refuse(path, "it is a directory")
    if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise _refuse(path, f"it is a {'block device' if stat.S_ISBLK(mode) else 'socket'}, not a file")
    if stat.S_ISREG(mode) and st.st_nlink > 1:
        raise _refuse(path, f"it has {st.st_nlink} hard links, and writing it would change the others too")
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        uid = os.geteuid()
        try:
            fst = os.stat(os.path.dirname(name))
        except OSError as exc:
            raise output_unwritable(path, exc) from None
        sticky_shared = fst.st_mode & stat.S_ISVTX and fst.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if sticky_shared and st.st_uid not in (uid, fst.st_uid):
            raise _refuse(path, f"it is {_user(st.st_uid)}'s file in {display_path(os.path.dirname(name))}, "
                                "a sticky folder others can write")


def check(path: str) -> None:
    """Refuse before any work an output name netlab would not write (the rules above); writes nothing."""
    name, proc = _resolve(path)
    if proc:
        return
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise output_unwritable(path, exc) from None
    if stat.S_ISFIFO(st.st_mode):
        return  # whether it has a reader is known when it is opened
    _check_target(path, name, st)


def open_output(path: str) -> BinaryIO:
    """``path`` opened for writing from its start, by the rules above (UsageError when one refuses, nothing
    created nor truncated); an OS error is ``output_unwritable``'s line."""
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
    for _ in range(3):  # the name came or went between the look and the open: look again
        name, proc = _resolve(path)
        try:
            if proc:
                fd = os.open(name, flags)
            else:
                try:
                    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    try:
                        fd = os.open(name, flags | os.O_NOFOLLOW)
                    except FileNotFoundError:
                        continue  # gone since: look again
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                continue  # a symlink came at the name since it was looked at: judge it
            if exc.errno == errno.ENXIO:
                raise _refuse(path, "it is a FIFO that nothing reads (writing it would wait for ever)") from None
            raise output_unwritable(path, exc) from None
        try:
            st = os.fstat(fd)
            if not proc:
                _check_target(path, name, st)
            os.set_blocking(fd, True)
            if stat.S_ISREG(st.st_mode):
                os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "wb")
    raise _refuse(path, "its name keeps changing while netlab opens it")


def write_output(path: str, data: bytes) -> None:
    """Write ``data`` as the whole of the file the user named."""
    fh = open_output(path)
    try:
        with fh:
            fh.write(data)
    except OSError as exc:
        raise output_unwritable(path, exc) from None
