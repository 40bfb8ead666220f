"""An AF_UNIX socket at a path of any length: bound and reached through its folder's descriptor.

Linux keeps a socket's path in ``sun_path``, 108 bytes with its NUL. A lab's control socket,
``<state folder>/<lab>/echo.sock``, did not fit under a state folder of 73 characters or more (a 24-character lab
name): the echo server could not listen ("AF_UNIX path too long") and every pod's echo container failed to
start, under a folder that every other command (and the doctor) took. So the socket's folder is opened first
(``O_PATH``, never through a symlink at its last step: the folder is the one checked, not one swapped in its place
by a link) and the socket is named through that descriptor's magic link, ``/proc/self/fd/N/<name>``: a few dozen
characters whatever the folder's path, and always that very folder. What is looked at or removed there (is a
socket there? a dead server's, unlinked) goes through the same descriptor.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from types import TracebackType

_FOLDER = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Folder:
    """The folder of the socket ``path``, held open; :attr:`address` is what bind() and connect() take."""

    def __init__(self, path: str):
        folder, self.name = os.path.split(path)
        self.fd = os.open(folder or ".", _FOLDER)  # OSError: not there, not a folder, a symlink

    @property
    def address(self) -> str:
        return f"/proc/self/fd/{self.fd}/{self.name}"

    def lstat(self) -> os.stat_result:
        return os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)

    def unlink(self) -> None:
        os.unlink(self.name, dir_fd=self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (SO_PEERCRED)


def connect(path: str, timeout: float) -> socket.socket | None:
    """A connection to the server listening on ``path``; None when nobody listens there. Through the socket's
    folder's descriptor: a path of any length, longer than an AF_UNIX address."""
    try:
        at = Folder(path)
    except OSError:  # no folder (or not one: a symlink)
        return None
    with at:
        try:
            if not stat.S_ISSOCK(at.lstat().st_mode):
                return None
        except OSError:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(at.address)
        except OSError:  # ECONNREFUSED: a dead server's socket
            sock.close()
            return None
    return sock


def peer_pid(path: str, timeout: float = 1.0) -> int | None:
    """The pid of the process listening on the socket ``path`` (answering or not: SIGSTOP), or None."""
    sock = connect(path, timeout)
    if sock is None:
        return None
    with sock:
        pid, _uid, _gid = UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return pid or None
