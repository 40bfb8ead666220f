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

from netlab.errors import UsageError, display_path
from netlab.kernel.mountinfo import Mount, mount_of, read_mounts
from netlab.model.naming import ETC_NETNS, NETNS_DIR
from netlab.realize import state_dir


# The machine-wide lock of the probes' turns (probe/turns.py LOCK_PATH, which loads no kernel code of its own):
# `doctor` and a probe's "waiting for" line read who holds the turn from its text. A file, not a folder.
TURN_LOCK = "/run/netlab-neighbours.lock"


def _folders() -> list[tuple[str, str]]:
    """Each protected folder (and the turns' lock, a file) and what it holds, in words. The default state directory
    stays protected while NETLAB_STATE_DIR points elsewhere: other labs of this machine keep their state there; so
    does every other state folder this machine shows a lab up with (its pins' tmpfs, as `netlab list` names it)."""
    from netlab.realize.tags import pin_folders

    roots = dict.fromkeys([state_dir.STATE_ROOT, state_dir.DEFAULT_STATE_ROOT, *pin_folders()])
    return ([(root, "netlab's state directory") for root in roots]
            + [(NETNS_DIR, "the folder of the network namespaces"), (ETC_NETNS, "the folder of the pods' files"),
               (TURN_LOCK, "the machine-wide lock of the probes' turns")])


def _in_filesystem(real: str, mounts: list[Mount]) -> tuple[str, str] | None:
    """The device and the path inside that filesystem of ``real`` (resolved, absolute): what it is whatever mount
    reaches it. The deepest mount point over it wins; of several on one point, the last mounted (the one on top)."""
    m = mount_of(real, mounts)
    if m is None:
        return None
    rest = real[len(m.point):].lstrip(os.sep)
    return m.dev, (os.path.join(m.root, rest) if rest else m.root)


def _under_by_mounts(real: str, folders: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The protected folder that ``real`` is in by the file system's own paths: reached through a bind mount of a
    folder inside one (``/tmp/x`` showing ``/run/netlab/lab``), which no inode above ``real`` reveals."""
    mounts = read_mounts()
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
    mounts = read_mounts()
    below = [(m.root, m.dev) for m in mounts if m.point == real or m.point.startswith(real.rstrip(os.sep) + os.sep)]
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
        where = "" if folder == TURN_LOCK else "inside "
        raise UsageError(f"cannot write {display_path(os.fspath(path))}: it is {where}{folder}, {what}, and "
                         "would overwrite what keeps the labs running; write it somewhere else")
