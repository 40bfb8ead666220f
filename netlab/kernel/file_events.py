"""What the kernel tells of one file's writes: inotify(7) on its folder, for ``up --watch``'s topology file (and the
files it includes: the folders their globs look in).

A save that truncates the file and then writes it (``cat > file``, a shell's ``>``, many editors) is seen by
a look at its size and mtime halfway, empty or cut short. The kernel says when a writer is done with a file:
IN_CLOSE_WRITE when a descriptor opened for writing is closed, IN_MOVED_TO when another file is renamed over
it (an editor's atomic save). IN_MODIFY and IN_CREATE say that a write has begun (an O_TRUNC open too). The
folder is watched, not the file: a rename over it replaces the file's inode, which a watch of the file would
lose. Only the file's own name counts (and the names an include glob matches, in its folder). A folder where
inotify says nothing of others' writes (NFS, a FUSE mount) gives no events: the watcher's look at the file's stat
still sees its changes.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import struct
from typing import Sequence

from netlab.kernel import libc

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_NONBLOCK, IN_CLOEXEC = 0x100, 0x200, 0o4000, 0o2000000
IN_IGNORED = 0x8000  # the kernel dropped a watch: its folder was deleted (or its file system unmounted)
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len

WRITING = "writing"  # a write began: the file may be empty or cut short until its writer closes it
DONE = "done"  # its writer closed it, or another file was renamed over it: it is whole
GONE = "gone"  # removed, or renamed away


def kind(mask: int) -> str | None:
    """What an event's ``mask`` says of the file (None: nothing the watcher reads)."""
    if mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
        return DONE
    if mask & (IN_MODIFY | IN_CREATE):
        return WRITING
    if mask & (IN_DELETE | IN_MOVED_FROM):
        return GONE
    return None


class FileEvents:
    """An inotify descriptor on ``path``'s folder, readable when something happens there; :meth:`read` says what
    happened to ``path`` itself, and to the files of ``globs``: (folder, name pattern) pairs, the folders an
    ``include:`` glob looks in and the names it matches there (fnmatch's, a leading dot only by a pattern that
    has one, as glob's). OSError when inotify cannot watch ``path``'s folder (no such folder, the watches limit
    reached); a glob's folder that cannot be watched (not there yet) is left to the watcher's look at the
    files' stat."""

    def __init__(self, path: str, globs: Sequence[tuple[str, str]] = ()):
        real = os.path.realpath(path)  # a symlink's target is what is written
        self.folder, self.name = os.path.dirname(real) or ".", os.path.basename(real).encode()
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        self.names: dict[int, list[str]] = {}  # watch descriptor -> the name patterns of its folder
        self.paths: dict[int, str] = {}  # watch descriptor -> its folder
        # Each folder asked for -> its (device, inode) when it was watched; None: not there then (or not watchable)
        self.folders: dict[str, tuple[int, int] | None] = {}
        self.lost = False  # a watch the kernel dropped (IN_IGNORED): its folder was deleted
        try:
            self._folder(self.folder, glob.escape(os.path.basename(real)))
        except OSError:
            os.close(self.fd)
            self.fd = -1
            raise
        for folder, pattern in globs:
            try:
                self._folder(folder, pattern)
            except OSError:
                self.folders.setdefault(folder, None)
                continue

    def _folder(self, folder: str, pattern: str) -> None:
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        seen = _identity(folder)  # before the watch: a folder replaced in between is told by replaced()
        wd = libc.inotify_add_watch(self.fd, folder, mask)  # a folder watched twice: one wd
        self.names.setdefault(wd, []).append(pattern)
        self.paths[wd] = folder
        self.folders[folder] = seen

    def replaced(self) -> bool:
        """Whether a folder watched (or asked for) is not the one the watches listen to any more: deleted (the
        kernel dropped its watch), made again or renamed over (another inode at its path), made since (it was
        not there). Its files' writes are told by no event until it is watched anew. (A dropped watch is known
        from the events :meth:`read` took: read them first.)"""
        return self.lost or any(_identity(folder) != seen for folder, seen in self.folders.items())

    def _named(self, wd: int, name: bytes) -> bool:
        text = os.fsdecode(name)
        return any(fnmatch.fnmatchcase(text, p) and (not text.startswith(".") or p.startswith("."))
                   for p in self.names.get(wd, ()))

    def read(self) -> list[str]:
        """What happened to the file since the last read, in order (WRITING, DONE, GONE); [] when nothing did."""
        return [what for what, _ in self.read_named()]

    def read_named(self) -> list[tuple[str, str]]:
        """:meth:`read`'s events, each with the path of the file it tells of (its folder as watched)."""
        out: list[tuple[str, str]] = []
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            off = 0
            while off + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size:off + _EVENT.size + length].split(b"\0", 1)[0]
                off += _EVENT.size + length
                if mask & IN_IGNORED:
                    self.lost = True
                what = kind(mask)
                if what is not None and self._named(wd, name):
                    out.append((what, os.path.join(self.paths.get(wd, self.folder), os.fsdecode(name))))
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _identity(folder: str) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
