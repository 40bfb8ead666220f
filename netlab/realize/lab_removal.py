"""What ``down`` removes of a lab's folder (realize/lab_folder.py says which folders are netlab's).

Only the names netlab writes there (lab_folder.OWN_FILES, OWN_DIRS and the temporary files of their writes), each
removed fd-relative in the folder opened once (no symlink followed, no mount point crossed); what else is there is
said and left, with the folder.
"""

from __future__ import annotations

import contextlib
import os
import stat

from netlab.realize import lab_folder
from netlab.realize.lab_folder import MARK_FILE

LAST = ("state.json", "lock", MARK_FILE)  # removed last, in this order (lab_list.forget)
# The test hooks (kernel/testhooks.py) right after each of LAST is removed from a lab's folder.
GONE_POINTS = {"state.json": "forget-state-gone", "lock": "forget-lock-gone", MARK_FILE: "forget-mark-gone"}


def fault_point(name: str) -> None:
    """The test hook ``name`` (kernel/testhooks.py): a root test holds a folder's removal there."""
    from netlab.kernel import testhooks  # here: `plan` reads state through lab_folder, and loads no kernel code

    testhooks.fault_point(name)


def remove_own(root: str, lab: str) -> list[tuple[str, str]]:
    """Remove netlab's own names from the lab folder ``root``/``lab``, fd-relative: the folder is opened once (no
    symlink followed) and every removal is made in it, never through a path a swap could redirect; nothing on
    another mount is removed (a mount id, not st_dev, tells: a bind mount of a folder of the same file system has
    the same st_dev). The state file goes after everything else but the lock and the mark, then the lock, then the
    mark, then the folder (when nothing else is in it); a symlink goes itself (never followed: what it names stays).
    Returns what it left that is not netlab's, each name
    (``logs/sub``: inside one of netlab's folders) with why, sorted: the folder stays with them, unmarked (no lab's
    any more). A UTS pin still mounted (of namespaces a failed `up` left, in ``uts``) is netlab's: not said, it
    keeps the lock and the mark, for ``down --force`` to finish."""
    try:
        rfd = os.open(root, lab_folder.DIR)
    except OSError:
        return []
    try:
        try:
            fd = os.open(lab, lab_folder.DIR, dir_fd=rfd)
        except OSError:
            return []
        try:
            left: list[tuple[str, str]] = []
            mnt = lab_folder.lab_mount(fd)
            for name in sorted(os.listdir(fd)):
                if name in LAST:
                    continue
                if not lab_folder.own_name(name):
                    left.append((name, lab_folder.NOT_NETLABS))
                elif name in lab_folder.OWN_DIRS and _not_a_folder(fd, name, mnt):
                    left.append((name, lab_folder.NOT_A_FOLDER))  # a file where netlab makes a folder: someone's
                elif name == "uts":
                    _remove_at(fd, name, mnt, [], name)  # its pins' mounts are netlab's: kept, not said
                else:
                    _remove_at(fd, name, mnt, left, name)
            # Something of netlab's it may not remove (a UTS pin still mounted, of namespaces a failed `up` left)
            # keeps the lock and the mark: the folder stays netlab's, which `down --force` then finishes.
            said = {name.split("/")[0] for name, _ in left}
            kept = [name for name in os.listdir(fd)
                    if name not in LAST and name not in said and lab_folder.own_name(name)]
            fault_point("forget-emptied")
            for name in LAST[:1] if kept else LAST:  # a removal cut short keeps the state: `down` again finishes it
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    _remove_at(fd, name, mnt, left, name)
                except OSError:
                    return sorted(left)
                fault_point(GONE_POINTS[name])
        finally:
            os.close(fd)
        if not left:
            with contextlib.suppress(OSError):
                os.rmdir(lab, dir_fd=rfd)
        return sorted(left)
    finally:
        os.close(rfd)


def _not_a_folder(fd: int, name: str, mnt: tuple[int, int | None]) -> bool:
    """Whether ``name`` in the open folder ``fd`` is neither a folder nor a symlink, on the mount ``mnt``: what
    lab_folder.open_folder calls NOT_A_FOLDER (a symlink goes itself; a mount point is said by _remove_at)."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and lab_folder.same_mount(fd, name, mnt)


def _remove_at(fd: int, name: str, mnt: tuple[int, int | None], left: list[tuple[str, str]], shown: str) -> None:
    """Remove ``name`` in the open folder ``fd``, a folder with what is in it, on that mount only; a mount point met
    (``shown``: its name from the lab's folder) is added to ``left``, nothing in it removed."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return
    if not lab_folder.same_mount(fd, name, mnt):
        left.append((shown, lab_folder.ON_A_MOUNT))  # a mount point: not ours to delete through
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=fd)  # a symlink itself goes, never followed
        return
    try:
        sub = os.open(name, lab_folder.DIR, dir_fd=fd)
    except OSError:
        return
    try:
        if not lab_folder.on_mount(sub, mnt):
            left.append((shown, lab_folder.ON_A_MOUNT))  # mounted there since it was looked at
            return
        for inner in os.listdir(sub):
            _remove_at(sub, inner, mnt, left, f"{shown}/{inner}")
    finally:
        os.close(sub)
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=fd)
