"""The host folders whose files are netlab's (or ip-netns(8)'s) own, which no output file a user names may land in.

A lab lives in three places on the host: its state under the state directory (``/run/netlab/<lab>/``: state.json,
the lock, the containers' logs), its network namespaces as mounts under ``/run/netns``, and its pods' resolv.conf
and hosts under ``/etc/netns/<pod namespace>/``. A pcap, a picture or a JUnit report written over one of those
files (``capture -w /run/netlab/lab/state.json``, a typo) would leave the lab "corrupt", or a pod without its DNS,
and only ``down --force`` would bring it back. So such a path is refused before anything is captured or written,
whatever the way it is spelled (``..``, a symlink to one of these folders, a bind mount of one, or of a folder
in one: ``mount --bind /run/netlab/lab /tmp/x`` makes ``/tmp/x/state.json`` the lab's state file).
"""

from __future__ import annotations

import os
import re

from netlab.errors import UsageError, display_path
from netlab.model.naming import ETC_NETNS, NETNS_DIR
from netlab.realize import state_dir


def _folders() -> list[tuple[str, str]]:
    """Each protected folder and what it holds, in words. The default state directory stays protected while
    NETLAB_STATE_DIR points elsewhere: other labs of this machine keep their state there."""
    roots = dict.fromkeys([state_dir.STATE_ROOT, state_dir.DEFAULT_STATE_ROOT])
    return ([(root, "netlab's state directory") for root in roots]
            + [(NETNS_DIR, "the folder of the network namespaces"), (ETC_NETNS, "the folder of the pods' files")])


MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[tuple[str, str, str]]:
    """Each mount of this process's mount namespace, in the order they were made: its mount point, the folder of
    its filesystem it shows there (``/`` for a whole filesystem, the source folder for a bind mount), its device."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [(_unescape(fields[4]), _unescape(fields[3]), fields[2])
            for fields in (line.split() for line in lines) if len(fields) > 4]


def _in_filesystem(real: str, mounts: list[tuple[str, str, str]]) -> tuple[str, str] | None:
    """The device and the path inside that filesystem of ``real`` (resolved, absolute): what it is whatever mount
    reaches it. The deepest mount point over it wins; of several on one point, the last mounted (the one on top)."""
    best: tuple[str, str, str] | None = None
    for point, root, dev in mounts:
        if (real == point or real.startswith(point.rstrip(os.sep) + os.sep)) and (
                best is None or len(point) >= len(best[0])):
            best = (point, root, dev)
    if best is None:
        return None
    point, root, dev = best
    rest = real[len(point):].lstrip(os.sep)
    return dev, (os.path.join(root, rest) if rest else root)


def _under_by_mounts(real: str, folders: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The protected folder that ``real`` is in by the file system's own paths: reached through a bind mount of a
    folder inside one (``/tmp/x`` showing ``/run/netlab/lab``), which no inode above ``real`` reveals."""
    mounts = _mounts()
    target = _in_filesystem(real, mounts)
    if target is None:
        return None
    for folder, what in folders:
        if not os.path.exists(folder):
            continue  # not there: nothing in it to overwrite, and nothing of it to mount elsewhere
        mine = _in_filesystem(os.path.realpath(folder), mounts)
        if mine is not None and mine[0] == target[0] and (
                target[1] == mine[1] or target[1].startswith(mine[1].rstrip(os.sep) + os.sep)):
            return folder, what
    return None


def own_folder(path: str) -> tuple[str, str] | None:
    """The protected folder that ``path`` is in, or is, and what it holds; None when it is in none of them.

    Judged on the path the kernel would open: symlinks and ``..`` resolved (os.path.realpath resolves what
    exists and keeps the rest as written), then each folder above it compared by identity (device and inode)
    as well, for one of these folders reached by another name (a bind mount of it), and last by the mounts'
    table, for a folder inside one mounted elsewhere (:func:`_under_by_mounts`)."""
    real = os.path.realpath(path)
    ids: dict[tuple[int, int], tuple[str, str]] = {}
    for folder, what in _folders():
        mine = os.path.realpath(folder)
        if real == mine or real.startswith(mine.rstrip(os.sep) + os.sep):
            return folder, what
        try:
            st = os.stat(folder)
        except OSError:
            continue  # not there: nothing in it to overwrite, and no other name reaches it
        ids.setdefault((st.st_dev, st.st_ino), (folder, what))
    above = real
    while ids:
        try:
            st = os.stat(above)
        except OSError:
            pass
        else:
            if (st.st_dev, st.st_ino) in ids:
                return ids[(st.st_dev, st.st_ino)]
        parent = os.path.dirname(above)
        if parent == above:
            break
        above = parent
    return _under_by_mounts(real, _folders())


def holds_own_folder(path: str) -> tuple[str, str] | None:
    """The protected folder that ``path`` holds (is above it: its parent, or any folder further up), and what it
    holds; None when none is below it. For a folder a program empties (pytest's ``--basetemp``: ``--basetemp
    /tmp/x`` with the state directory /tmp/x/state, or ``/run``): emptying it deletes the labs' files.

    Judged as :func:`own_folder` judges: on the resolved path, then by identity (a folder above a protected one
    reached by another name: a bind mount of ``/run``), and last by the mounts' table, for a mount at or below
    ``path`` that shows a protected folder, one above it, or one inside it (``mount --bind /run/netlab/lab
    /tmp/x/l``), whose files a recursive delete reaches through the mount."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        st = None  # not there: nothing in it to delete, but a folder named below it by path still is
    folders = _folders()
    for folder, what in folders:
        mine = os.path.realpath(folder)
        if mine.startswith(real.rstrip(os.sep) + os.sep):
            return folder, what
        if st is None or not os.path.exists(folder):
            continue
        above = mine
        while True:
            try:
                up = os.stat(above)
            except OSError:
                pass
            else:
                if (up.st_dev, up.st_ino) == (st.st_dev, st.st_ino):
                    return folder, what
            parent = os.path.dirname(above)
            if parent == above:
                break
            above = parent
    return _mounted_below(real, folders)


def _mounted_below(real: str, folders: list[tuple[str, str]]) -> tuple[str, str] | None:
    mounts = _mounts()
    below = [(root, dev) for point, root, dev in mounts
             if point == real or point.startswith(real.rstrip(os.sep) + os.sep)]
    for folder, what in folders:
        if not os.path.exists(folder):
            continue
        mine = _in_filesystem(os.path.realpath(folder), mounts)
        if mine is None:
            continue
        for root, dev in below:
            if dev == mine[0] and _nested(root, mine[1]):
                return folder, what
    return None


def _nested(a: str, b: str) -> bool:
    """One of two paths of a filesystem is the other, or inside it."""
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)


def check_output_path(path: str | os.PathLike[str] | None) -> None:
    """Refuse (UsageError, exit 2: the path is the mistake) an output file a user named inside a protected folder."""
    if path is None:
        return
    found = own_folder(os.fspath(path))
    if found is not None:
        folder, what = found
        raise UsageError(f"cannot write {display_path(os.fspath(path))}: it is inside {folder}, {what}, and "
                         "would overwrite what keeps the labs running; write it somewhere else")
