"""The names of a path in the order the kernel walks them, for the two walkers that judge each name on the way
(netlab/outfile.py: an output file; netlab/model/trust.py: a file root reads or runs).

A path is not normalized as text (``os.path.abspath`` drops ``link/..`` before ``link`` is followed): only a
relative path's leading working folder is joined to it, as the kernel starts from it. A symlink's target is put
in front of the names left, so a ``..`` after it is the parent of the folder the target leads to, as open(2)
goes. What a name is (a folder, a symlink, missing) and what ``..`` leads to is the walker's to find.
"""

from __future__ import annotations

import errno
import os

from netlab.errors import cwd_gone

MAX_LINKS = 40  # the kernel's MAXSYMLINKS


def _parts(path: str) -> list[str]:
    """``path``'s names as a stack (the next one last), without the empty ones (``a//b``)."""
    return [part for part in path.split("/") if part][::-1]


class Names:
    """What is left to walk of ``path``, from ``/``, one name at a time (:meth:`pop`); a symlink met is followed
    by :meth:`follow`."""

    def __init__(self, path: str) -> None:
        self.path = path
        why = cwd_gone(path)
        if why:  # as a missing name, in words (os.getcwd raised it bare: a traceback, QA q50 6)
            raise FileNotFoundError(errno.ENOENT, why, path)
        self._todo = _parts(path if path.startswith("/") else os.path.join(os.getcwd(), path))
        self.links = 0  # symlinks followed so far

    def __bool__(self) -> bool:
        return bool(self._todo)

    def pop(self) -> str:
        """The next name: a folder's or the last one (when nothing is left after it), ``.`` or ``..``."""
        return self._todo.pop()

    def follow(self, target: str) -> bool:
        """Walk ``target`` (a symlink's) before the names left; True when it is absolute (the walk goes on from
        ``/``, else from the link's folder). OSError ELOOP past the kernel's number of links."""
        self.links += 1
        if self.links > MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self.path)
        self._todo += _parts(target)
        return target.startswith("/")
