"""The mounts of this process's mount namespace, as ``/proc/self/mountinfo`` lists them.

One line a mount, in the order they were made (proc(5))::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    id parent dev root point options [optional fields...] - type source super-block options

``root`` is the folder of the file system the mount shows (``/`` for a whole
file system, the source folder for a bind mount), ``point`` where it shows it.
The kernel writes a space, tab, newline and backslash in a path as an octal
escape (``\\040``, ``\\011``, ``\\012``, ``\\134``: its mangle()); they are
undone here. Several mounts may sit on one point: the last one listed is on
top, the one a path there reaches.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple, Sequence

MOUNTINFO = "/proc/self/mountinfo"
_ESCAPE = re.compile(r"\\([0-7]{3})")


class Mount(NamedTuple):
    point: str  # where it is mounted (unescaped)
    root: str  # the folder of its file system it shows there (unescaped)
    dev: str  # its file system's device, "major:minor"
    fstype: str  # tmpfs, ext4, nfs4, nsfs ...
    source: str  # what was mounted: a device, a server's folder, a name (netlab-uts)
    options: tuple[str, ...]  # the mount's own, then its super block's


def unescape(field: str) -> str:
    """A path as mountinfo writes it, with its octal escapes (``\\040``: a space) undone."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mount(line: str) -> Mount | None:
    """One mountinfo line; None for one short of the fields the kernel writes."""
    head, _, tail = line.partition(" - ")
    fields, rest = head.split(), tail.split()
    if len(fields) < 6 or len(rest) < 3:
        return None
    return Mount(point=unescape(fields[4]), root=unescape(fields[3]), dev=fields[2], fstype=rest[0],
                 source=rest[1], options=tuple(fields[5].split(",") + rest[2].split(",")))


def read_mounts(path: str | None = None) -> list[Mount]:
    """This process's mounts (``path``: another mountinfo file), in the order they were made; none when the table
    cannot be read."""
    try:
        with open(path or MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [m for m in map(parse_mount, lines) if m is not None]


def mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount that ``path`` (absolute, resolved: os.path.realpath) is on: the deepest mount point at or above it;
    of several on that point, the last mounted (the one on top). None when no mount point is above it."""
    best: Mount | None = None
    for m in mounts:
        if (path == m.point or path.startswith(m.point.rstrip(os.sep) + os.sep)) and (
                best is None or len(m.point) >= len(best.point)):
            best = m
    return best
