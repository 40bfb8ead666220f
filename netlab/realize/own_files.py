"""The host folders whose files are netlab's (or ip-netns(8)'s) own, which no output file a user names may land in.

A lab lives in three places on the host: its state under the state directory (``/run/netlab/<lab>/``: state.json,
the lock, the containers' logs), its network namespaces as mounts under ``/run/netns``, and its pods' resolv.conf
and hosts under ``/etc/netns/<pod namespace>/``. A pcap, a picture or a JUnit report written over one of those
files (``capture -w /run/netlab/lab/state.json``, a typo) would leave the lab "corrupt", or a pod without its DNS,
and only ``down --force`` would bring it back. So such a path is refused before anything is captured or written,
whatever the way it is spelled (``..``, a symlink to one of these folders, a bind mount of one).
"""

from __future__ import annotations

import os

from netlab.errors import UsageError, display_path
from netlab.model.naming import ETC_NETNS, NETNS_DIR
from netlab.realize import state_dir


def _folders() -> list[tuple[str, str]]:
    """Each protected folder and what it holds, in words. The default state directory stays protected while
    NETLAB_STATE_DIR points elsewhere: other labs of this machine keep their state there."""
    roots = dict.fromkeys([state_dir.STATE_ROOT, state_dir.DEFAULT_STATE_ROOT])
    return ([(root, "netlab's state directory") for root in roots]
            + [(NETNS_DIR, "the folder of the network namespaces"), (ETC_NETNS, "the folder of the pods' files")])


def own_folder(path: str) -> tuple[str, str] | None:
    """The protected folder that ``path`` is in, or is, and what it holds; None when it is in none of them.

    Judged on the path the kernel would open: symlinks and ``..`` resolved (os.path.realpath resolves what
    exists and keeps the rest as written), then each folder above it compared by identity (device and inode)
    as well, for one of these folders reached by another name (a bind mount of it; not one of a folder in it)."""
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
    return None


def check_output_path(path: str | os.PathLike[str] | None) -> None:
    """Refuse (UsageError, exit 2: the path is the mistake) an output file a user named inside a protected folder."""
    if path is None:
        return
    found = own_folder(os.fspath(path))
    if found is not None:
        folder, what = found
        raise UsageError(f"cannot write {display_path(os.fspath(path))}: it is inside {folder}, {what}, and "
                         "would overwrite what keeps the labs running; write it somewhere else")
