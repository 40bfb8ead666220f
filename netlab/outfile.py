"""The one way netlab opens a file a user named for its output (-w, --pcap, --junit, graph -w, the test
artifacts): never through a name someone else can point elsewhere.

netlab often runs as root, and a name such as /tmp/x.pcap is anyone's to plant: ``open(path, "wb")`` follows
a symlink another user put there and truncates what it points to (a root-owned file, /etc/shadow). The rules
are the kernel's own, whatever its sysctls say here:

* a symlink anywhere on the way (a folder of the path as well as its last name) is followed only when root or
  the invoking user (under sudo, $SUDO_UID's) owns it and no one else can write its folder
  (fs.protected_symlinks: no one else could have put it there), checked again at each link of a chain;
* the path is walked one folder at a time, each opened from the one before with O_NOFOLLOW: a folder swapped
  for a symlink after it was judged fails the walk instead of leading it elsewhere;
* an existing file another user owns in a sticky folder others can write (/tmp) is not truncated
  (fs.protected_regular: its owner, not netlab, decides what it holds);
* what is not a regular file is not written as one: a directory, a block device, a socket are refused; a FIFO
  without a reader is said (opening it would wait for ever); a character device (/dev/null, /dev/full, a
  terminal) is written as named;
* a descriptor's link of netlab's own process (/dev/stdout, /proc/self/fd/N) that is a regular file is written
  through the descriptor itself (a duplicate): where the shell left it, never cut (``-w /dev/stdout >> log``
  appends, as the shell's O_APPEND says; what a ``{ echo head; netlab ...; } > f`` wrote before is kept);
* a regular file with more than one hard link is refused: writing it would change every other name too;
* the last name is opened with O_NOFOLLOW: a symlink put there after the checks fails the open;
* an existing regular file is replaced only when it is empty or already holds the command's kind of output
  (netlab/outkinds.py: a pcap for capture -w, a picture for graph -w): ``graph -w /etc/passwd`` by mistake
  leaves the users be, and the line says how to replace it anyway (``--force``, :func:`force`) or to remove it
  first. --force replaces the file named, never one a symlink at that name leads to: that is refused still.

Nothing is written (nor created, nor truncated) when a rule refuses: one line, exit 2 (the path is the
mistake); an OS error while writing is ``errors.output_unwritable``'s line (exit 3 for a full disk).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from contextvars import ContextVar
from dataclasses import dataclass
from typing import BinaryIO, Callable

from netlab.errors import UsageError, display_path, output_unwritable
from netlab.outkinds import HEAD, OLDER, Kind
from netlab.model.pathwalk import MAX_LINKS, Names
from netlab.model.trust import invoking_uids, user_name


def _others_write(folder: os.stat_result, uids: set[int]) -> bool:
    """Whether someone other than ``uids`` can add or replace names in a folder: its owner is someone else, or
    its group or everyone may write it."""
    return folder.st_uid not in uids or bool(folder.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _refuse(path: str, why: str, fix: str = "") -> UsageError:
    return UsageError(f"cannot write {display_path(path)}: {why}; netlab writes nothing there" +
                      (f": {fix}" if fix else ""))


# The names a command's --force lets replace whatever regular file they hold (as given: the writer gets the name
# the command was given), for that command alone (cli.output.check_output_file resets it when the command ends).
_FORCED: ContextVar[frozenset[str]] = ContextVar("netlab_outfile_forced", default=frozenset())


def force(path: str) -> Callable[[], None]:
    """--force: the file at ``path`` is replaced whatever it holds (not through a symlink); returns the undo."""
    token = _FORCED.set(_FORCED.get() | {path})
    return lambda: _FORCED.reset(token)


_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass
class _Name:
    """Where the output goes: the folder (a descriptor held open, reached without following a name anyone else
    could change), the last name in it, and whether that name is a link of /proc (a descriptor's: /dev/stdout),
    which only the kernel can follow; ``linked``: the symlink named as the output, when the name is one (the file
    at ``where``/``name`` is where it leads)."""

    folder: int
    where: str  # the folder's path, for messages
    name: str
    proc: bool
    linked: str | None = None

    def close(self) -> None:
        os.close(self.folder)


def _resolve(path: str) -> _Name:
    """``path`` walked one name at a time from /, each folder opened from the one before with O_NOFOLLOW (a
    folder swapped for a symlink meanwhile fails the open, it is not followed); a symlink met anywhere, in the
    folder part as at the last name, is followed only where the rules allow (refused otherwise)."""
    uids = invoking_uids()
    todo = Names(path)
    folder, where = os.open("/", _DIR), "/"
    linked: str | None = None
    try:
        while todo:
            name = todo.pop()
            if name in (".", ".."):  # from the folder reached (a link's target's parent), as the kernel goes
                parent = os.open(name, _DIR, dir_fd=folder)
                os.close(folder)
                folder, where = parent, os.path.normpath(os.path.join(where, name))
                continue
            try:
                st = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except FileNotFoundError:
                if not todo:
                    return _Name(folder, where, name, False, linked)
                raise
            if stat.S_ISLNK(st.st_mode):
                current = os.path.join(where, name)
                if not todo and linked is None:
                    linked = current
                said = "" if not todo and not todo.links else f" (through {display_path(current)})"
                fst = os.fstat(folder)
                if todo.links >= MAX_LINKS:
                    raise _refuse(path, f"more than {MAX_LINKS} symlinks")
                if st.st_uid not in uids:
                    raise _refuse(path, f"it is a symlink{said} owned by {user_name(st.st_uid)}, not by you or root")
                if _others_write(fst, uids):
                    raise _refuse(path, f"it is a symlink{said} in {display_path(where)}, a folder others can "
                                        f"write (owner {user_name(fst.st_uid)}, mode {stat.S_IMODE(fst.st_mode):o})")
                if not todo and where.startswith("/proc/"):
                    # /proc/self/fd/1 -> "pipe:[123]": the fd's own file
                    return _Name(folder, where, name, True, linked)
                if todo.follow(os.readlink(name, dir_fd=folder)):
                    os.close(folder)
                    folder, where = os.open("/", _DIR), "/"
                continue
            if not todo:
                return _Name(folder, where, name, False, linked)
            inner = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=folder)  # ENOTDIR: a file where a folder should be
            os.close(folder)
            folder, where = inner, os.path.join(where, name)
        return _Name(folder, "/", ".", False)  # "/" itself: a directory, refused as one
    except UsageError:
        os.close(folder)
        raise
    except OSError as exc:
        os.close(folder)
        raise output_unwritable(path, exc) from None


def _check_target(path: str, at: _Name, st: os.stat_result) -> None:
    """Refuse what stands at ``at`` (``st``: its stat, lstat before opening, fstat after) when writing it
    would not be writing the user's own file."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise _refuse(path, "it is a directory")
    if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise _refuse(path, f"it is a {'block device' if stat.S_ISBLK(mode) else 'socket'}, not a file")
    if stat.S_ISREG(mode) and st.st_nlink > 1:
        raise _refuse(path, f"it has {st.st_nlink} hard links, and writing it would change the others too")
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        fst = os.fstat(at.folder)
        sticky_shared = fst.st_mode & stat.S_ISVTX and fst.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if sticky_shared and st.st_uid not in invoking_uids() | {fst.st_uid}:
            raise _refuse(path, f"it is {user_name(st.st_uid)}'s file in {display_path(at.where)}, "
                                "a sticky folder others can write")


def _check_kind(path: str, at: _Name, st: os.stat_result, kind: Kind | None, head: Callable[[], bytes]) -> None:
    """Refuse an existing regular file (``st``) that is not empty and holds something else than ``kind``
    (its first bytes: ``head()``), unless the command's --force names it (never through a symlink)."""
    if kind is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return
    if at.linked is None and path in _FORCED.get():
        return
    try:
        first: bytes | None = head()
    except OSError:
        first = None  # unreadable (a write-only file): what it holds is unknown, as something else
    if first is not None and kind.holds(first):
        return
    what = (f"a file of {st.st_size} bytes that is not {kind.words}" if first is not None else
            f"a file of {st.st_size} bytes netlab cannot read to tell whether it is {kind.words}")
    if at.linked is None:
        raise _refuse(path, f"it is {what}", OLDER + kind.fix if first is not None and kind.older(first) else kind.fix)
    target = display_path(os.path.join(at.where, at.name))
    raise _refuse(path, f"it is a symlink to {target}, {what}",
                  "it points at a file netlab did not write; remove the link or choose another path")


def _head_at(at: _Name) -> bytes:
    """The first bytes of the file at ``at`` (not through a symlink)."""
    fd = os.open(at.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=at.folder)
    try:
        return os.pread(fd, HEAD, 0)
    finally:
        os.close(fd)


def _head_of(fd: int) -> bytes:
    """The first bytes of the file open for writing at ``fd`` (the same file, opened again to read it)."""
    rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(rfd, HEAD, 0)
    finally:
        os.close(rfd)


def check(path: str, kind: Kind | None = None) -> None:
    """Refuse before any work an output name netlab would not write (the rules above; ``kind``: what an existing
    file must hold to be replaced, None: anything); writes nothing."""
    at = _resolve(path)
    try:
        if at.proc:
            return
        try:
            st = os.stat(at.name, dir_fd=at.folder, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise output_unwritable(path, exc) from None
        if stat.S_ISFIFO(st.st_mode):
            return  # whether it has a reader is known when it is opened
        _check_target(path, at, st)
        _check_kind(path, at, st, kind, lambda: _head_at(at))
    finally:
        at.close()


_OWN_FDS = re.compile(r"/proc/(?:self|thread-self|(\d+))(?:/task/\d+)?/fd")


def _own_regular_fd(at: _Name) -> int | None:
    """A duplicate of this process's descriptor ``at`` names (/proc/self/fd/N, where /dev/stdout leads) when it is a
    regular file open for writing: it shares the shell's offset and O_APPEND; None for anything else (a terminal,
    a pipe, another process's descriptor: opened again as named)."""
    own = _OWN_FDS.fullmatch(at.where)
    if own is None or (own.group(1) is not None and int(own.group(1)) != os.getpid()) or not at.name.isdigit():
        return None
    try:
        fd = int(at.name)
        if not stat.S_ISREG(os.fstat(fd).st_mode) or fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            return None
        return os.dup(fd)
    except OSError:
        return None


_SHARED = "netlab_shared_fd"


def shared(fh: BinaryIO) -> bool:
    """Whether ``fh`` (:func:`open_output`'s) writes through a descriptor the shell opened (/dev/stdout to a
    file): it is never cut, whatever its caller's ``truncate=False`` meant to do later."""
    return bool(getattr(fh, _SHARED, False))


def open_output(path: str, truncate: bool = True, kind: Kind | None = None) -> BinaryIO:
    """``path`` opened for writing from its start, by the rules above (UsageError when one refuses, nothing
    created nor truncated); an OS error is ``output_unwritable``'s line. ``truncate=False``: a file that is there
    keeps what it holds (the caller cuts it or appends, once it has something to write: NETLAB_CNI_LOG's copy).
    ``kind``: what an existing file must hold to be written (None: anything)."""
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
    for _ in range(3):  # the name came or went between the look and the open: look again
        at = _resolve(path)
        try:
            shared = _own_regular_fd(at) if at.proc else None
            if shared is not None:
                fh = os.fdopen(shared, "wb")
                setattr(fh, _SHARED, True)
                return fh
            try:
                if at.proc:
                    fd = os.open(at.name, flags, dir_fd=at.folder)
                else:
                    try:
                        fd = os.open(at.name, flags | os.O_NOFOLLOW | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=at.folder)
                    except FileExistsError:
                        try:
                            fd = os.open(at.name, flags | os.O_NOFOLLOW, dir_fd=at.folder)
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
                if not at.proc:
                    _check_target(path, at, st)
                    _check_kind(path, at, st, kind, lambda: _head_of(fd))
                os.set_blocking(fd, True)
                if stat.S_ISREG(st.st_mode) and truncate:
                    os.ftruncate(fd, 0)
            except BaseException:
                os.close(fd)
                raise
            return os.fdopen(fd, "wb")
        finally:
            at.close()
    raise _refuse(path, "its name keeps changing while netlab opens it")


def write_output(path: str, data: bytes, kind: Kind | None = None) -> None:
    """Write ``data`` as the whole of the file the user named (``kind``: as :func:`open_output`'s)."""
    fh = open_output(path, kind=kind)
    try:
        with fh:
            fh.write(data)
    except OSError as exc:
        raise output_unwritable(path, exc) from None
