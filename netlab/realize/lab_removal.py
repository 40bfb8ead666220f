"""What ``down`` removes of a lab's folder (realize/lab_folder.py says which folders are netlab's).

Only the names netlab writes there (lab_folder.OWN_FILES, OWN_DIRS and the temporary files of their writes), each
removed fd-relative in the folder opened once (no symlink followed, no mount point crossed); what else is there is
said and left, with the folder. A folder that goes whole leaves the lab's path before its state, lock and mark go
(:func:`take_away`): no other command meets it half removed.
"""

from __future__ import annotations

import contextlib
import os
import stat

from netlab.realize import lab_folder
from netlab.realize.lab_folder import MARK_FILE

LAST = ("state.json", "lock", MARK_FILE)  # removed last, in this order (lab_list.forget)
# The test hooks (kernel/testhooks.py) right after each of LAST is removed from a lab's folder: "forget-lock-gone"
# in a down's removal, "drop-lock-gone" in a lock holder's drop of a folder that held its lock and mark alone.
GONE_POINTS = {"state.json": "state-gone", "lock": "lock-gone", MARK_FILE: "mark-gone"}
GONE_INFIX = ".gone."  # .<lab>.gone.<pid>: a lab's folder taken off its path, its last names being removed


def fault_point(name: str) -> None:
    """The test hook ``name`` (kernel/testhooks.py): a root test holds a folder's removal there."""
    from netlab.kernel import testhooks  # here: `plan` reads state through lab_folder, and loads no kernel code

    testhooks.fault_point(name)


def remove_own(root: str, lab: str) -> list[tuple[str, str]]:
    """Remove netlab's own names from the lab folder ``root``/``lab``, fd-relative: the folder is opened once (no
    symlink followed) and every removal is made in it, never through a path a swap could redirect; nothing on
    another mount is removed (a mount id, not st_dev, tells: a bind mount of a folder of the same file system has
    the same st_dev). The state file goes after everything else but the lock and the mark, then the lock, then the
    mark, then the folder (when nothing else is in it: taken off the lab's path first, :func:`take_away`); a
    symlink goes itself (never followed: what it names stays).
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
            if not left and not kept and take_away(rfd, lab, fd):
                return []
            for name in LAST[:1] if kept else LAST:  # a removal cut short keeps the state: `down` again finishes it
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    _remove_at(fd, name, mnt, left, name)
                except OSError:
                    return sorted(left)
                fault_point(f"forget-{GONE_POINTS[name]}")
        finally:
            os.close(fd)
        if not left:
            with contextlib.suppress(OSError):
                os.rmdir(lab, dir_fd=rfd)
        return sorted(left)
    finally:
        os.close(rfd)


def take_away(rfd: int, lab: str, fd: int, hook: str = "forget", names: tuple[str, ...] = LAST) -> bool:
    """Take the lab folder ``lab`` of the open state folder ``rfd`` (open as ``fd``), which holds nothing but
    LAST's names (its state, lock and mark), off the lab's path in one step, then remove those names and it.

    Removed name by name at its path, it was met half removed by the commands that look there: emptied, it was
    "not a lab folder of netlab's" (exit 3, every command); its lock gone, an ``up`` made its own lock, and its
    lab, in it, whose mark the removal then took. Renamed first (RENAME_NOREPLACE) to a name no lab has
    (.<lab>.gone.<pid>), it is there whole or not at all: a command finds the lab down, and one that makes the
    lab again makes a folder of its own. Its lock's holder keeps the lock (on the open file); one waiting for it
    finds the file no longer at the path when it gets it (lab_lock._same_file), and locks the one there now.
    False when it cannot be taken so (a file system without RENAME_NOREPLACE, a folder that holds more, a name
    that will not go: it is put back at its path): the caller removes it there, as before. ``hook``: the test
    hooks' prefix (GONE_POINTS). ``names``: those of LAST it may hold (a caller that holds no lock: its mark
    alone; a lock made in it is another command's, held)."""
    gone = f".{lab}{GONE_INFIX}{os.getpid()}"
    if not _only_last(fd, names):
        return False
    for left in _left_by_the_dead(rfd, lab):  # a down killed between its rename and its rmdir left it
        _clear(rfd, left)
    try:
        lab_folder.renameat2(lab, gone, rfd)
    except (OSError, AttributeError):  # AttributeError: a C library without renameat2
        return False
    try:
        if not (_same_folder(rfd, gone, fd) and _only_last(fd, names)):  # a name made in it since it was looked at
            raise FileExistsError
        _unlink_last(fd, LAST, hook)
    except OSError:
        with contextlib.suppress(OSError):
            lab_folder.renameat2(gone, lab, rfd)  # back where it was, for the caller
        return False
    with contextlib.suppress(OSError):
        os.rmdir(gone, dir_fd=rfd)
    return True


def drop(root: str, lab: str, names: tuple[str, ...] = LAST[1:]) -> None:
    """Remove the lab folder ``root``/``lab`` that holds nothing but its lock and mark (realize/lab_lock.py: its
    lock's holder found the lab not up), taken off the lab's path first (:func:`take_away`). ``names``: what it
    may hold; a caller holding no lock gives the mark alone, and a folder where another made its lock meanwhile
    stays that command's."""
    try:
        rfd = os.open(root, lab_folder.DIR)
    except OSError:
        return
    try:
        try:
            fd = os.open(lab, lab_folder.DIR, dir_fd=rfd)
        except OSError:
            return
        try:
            if take_away(rfd, lab, fd, "drop", names):
                return
            if not _only_last(fd, names):  # another's name in it now (an up's lock): its folder
                return
            _unlink_last(fd, names, "drop")  # at its path: a file system without RENAME_NOREPLACE
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(lab, dir_fd=rfd)
    finally:
        os.close(rfd)


def _unlink_last(fd: int, names: tuple[str, ...], hook: str | None = None) -> None:
    """Unlink ``names`` (of LAST, in its order) in the open folder ``fd``, each one gone already too; ``hook``: the
    test hooks' prefix, a hook after each (GONE_POINTS)."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=fd)
        if hook is not None:
            fault_point(f"{hook}-{GONE_POINTS[name]}")


def _only_last(fd: int, names: tuple[str, ...] = LAST) -> bool:
    """Whether the open folder ``fd`` holds nothing but ``names`` (LAST's), none of them a folder."""
    for name in os.listdir(fd):
        if name not in names or stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
            return False
    return True


def _same_folder(rfd: int, name: str, fd: int) -> bool:
    """Whether ``name`` in the open folder ``rfd`` is the open folder ``fd``."""
    st, held = os.stat(name, dir_fd=rfd, follow_symlinks=False), os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _left_by_the_dead(rfd: int, lab: str) -> list[str]:
    """The folders .<lab>.gone.<pid> in the open state folder ``rfd`` whose pid is this process's or no running
    process's: what a process killed as it took the lab's folder away left (a live one is at work on its own)."""
    head, out = f".{lab}{GONE_INFIX}", []
    with contextlib.suppress(OSError):
        for name in os.listdir(rfd):
            pid = name[len(head):]
            if name.startswith(head) and pid.isdigit():
                from netlab.kernel.processes import running  # only where one is left: `plan` loads no kernel code

                if int(pid) == os.getpid() or not running(int(pid)):
                    out.append(name)
    return out


def _clear(rfd: int, gone: str) -> None:
    """Remove the folder ``gone`` (.<lab>.gone.<pid>) of the open state folder ``rfd`` when it holds nothing but
    LAST's names: what a process killed as it took a lab's folder away left."""
    try:
        fd = os.open(gone, lab_folder.DIR, dir_fd=rfd)
    except OSError:
        return
    try:
        if not _only_last(fd):
            return
        _unlink_last(fd, LAST)
    except OSError:
        return
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(gone, dir_fd=rfd)


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
