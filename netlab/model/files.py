"""A file a user names (a topology, the conflist it names), read as root would read it safely: only a regular
file, never blocking on a FIFO or a device, never more than a bound. Each caller words the refusal its way."""

from __future__ import annotations

import os
import stat
from typing import Callable


class Unreadable(Exception):
    """Why a file was not read. ``kind``: missing, directory, special (a FIFO, device or socket), too_big,
    error; ``strerror``: the OS's words for an error; ``size``: a file too big's size, when known before
    reading; ``opening``: the error came when opening it, not when reading it."""

    def __init__(self, kind: str, strerror: str | None = None, size: int | None = None, opening: bool = False):
        super().__init__(kind)
        self.kind, self.strerror, self.size, self.opening = kind, strerror, size, opening


def read_regular(path: str, limit: int, follow: bool = True,
                 check: Callable[[os.stat_result], None] | None = None) -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them; Unreadable otherwise. ``follow=False``: a
    file of netlab's own, never read through a symlink (one there is an error: ELOOP). ``check``: called with
    the stat of the file opened, before it is read (it raises to refuse it: model/trust.py)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise Unreadable("missing") from None
    except IsADirectoryError:
        raise Unreadable("directory") from None
    except OSError as exc:
        raise Unreadable("error", exc.strerror, opening=True) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise Unreadable("directory")
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable("special")
        if st.st_size > limit:
            raise Unreadable("too_big", size=st.st_size)
        if check is not None:
            check(st)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # a file that grows while it is read is cut at the bound
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Unreadable("too_big")
    except OSError as exc:
        raise Unreadable("error", exc.strerror) from None
    finally:
        os.close(fd)
    return b"".join(chunks)
