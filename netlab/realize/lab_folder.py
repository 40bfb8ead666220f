"""Which folders are netlab's: the state folder's ancestors, a lab's folder and its mark, and what ``down`` removes.

NETLAB_STATE_DIR may name any folder, so a folder in it is never taken for a lab's on its name alone (a state folder
of /var/lib would offer ``dpkg`` as a lost lab, and ``down --force`` would empty it):

- the state folder is used only when every folder above it is root's (or this user's) and no one else may write
  it (a sticky one, as /tmp, may be), and none is a symlink, as sudo and sshd's StrictModes check theirs: the owner
  of a folder above could swap what is below it while root writes there;
- a lab's folder is netlab's when it carries netlab's mark (:data:`MARK_FILE`), a file made with the folder: the
  folder is made under a temporary name, marked, then renamed into place without replacing anything
  (renameat2 RENAME_NOREPLACE), so no other command ever sees it unmarked. A folder of an earlier release (no mark)
  counts only when what it holds proves it (:func:`_earlier_release`): mode 0700, owned by this user, and its
  ``state.json`` a netlab state of that lab, or its ``lock`` netlab's lock text with nothing but netlab's names
  beside it. Any other root 0700 folder with a ``lock`` or a ``state.json`` (another program's) is left alone:
  nothing is written in it (no lock, no mark) before it is proven;
- ``down`` removes from a lab's folder only the names netlab writes there (:data:`OWN_FILES`, :data:`OWN_DIRS`,
  and the temporary files of their writes), fd-relative (no symlink followed, no mount point crossed), and says
  what else it left (realize/lab_removal.py): a file where netlab makes a folder too, by the rule every writer and
  reader of a lab's sub-folders opens it with (:func:`open_folder`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import time
from typing import NoReturn

from netlab.errors import EnvironmentNotReady

# The source of a lab's tmpfs of UTS pins on <state folder>/<lab>/uts (workload/uts.py): /proc/self/mountinfo
# shows it with the folder's path, which is how a lab's folder is found from its namespaces (realize/tags.py).
PINS_FS = "netlab-uts"
# The mark of a lab's folder that netlab made: a file of this user's, empty or holding the starttime of the process
# that made the folder (/proc/PID/stat's field 22, clock ticks after boot: drop_dead_temps)
MARK_FILE = "netlab-lab"
# The files netlab writes in a lab's folder (tests/unit/test_lab_folder_own.py holds each writer's name to this):
# the state (state.json, state.sum), the locks, the echo server's socket and log, probe's kept job, the quiz,
# the back-off record, what the nftables tables were left holding (realize/nft_written.py), and the mark.
OWN_FILES = frozenset({"state.json", "state.sum", "lock", "watcher", "echo.sock", "echo.log", "probe-job.json",
                       "quiz.json", "backoff.json", "warned.json", "nft-written.json", MARK_FILE})
OWN_DIRS = frozenset({"logs", "uts", "cni", "dns", "nodes"})  # made by netlab, with netlab's files alone inside
TEMP_INFIX = ".tmp."  # state_dir.write_atomic's temporary file: <name>.tmp.<pid>
DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RENAME_NOREPLACE = 1
AT_FDCWD = -100


def ancestor_problem(path: str, missing_ok: bool = False) -> str | None:
    """Why a folder above ``path`` (absolute) makes it unsafe for root's state, naming the folder; None when every
    one is a real folder owned by root (or this user), not writable by group or others unless sticky.
    ``missing_ok``: those above the first that is not there are not looked at (a reader finds no lab there)."""
    allowed = {0, os.geteuid()}
    parts = [p for p in os.path.abspath(path).split("/") if p]
    for i in range(len(parts)):
        above = "/" + "/".join(parts[:i])
        try:
            st = os.lstat(above)
        except FileNotFoundError:
            if missing_ok:
                return None
            return f"{above} cannot be read (No such file or directory)"
        except OSError as exc:
            return f"{above} cannot be read ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return (f"{above}, a folder above it, is a symlink (to {os.path.realpath(above)}); name the state folder "
                    "by its real path")
        if not stat.S_ISDIR(st.st_mode):
            return f"{above}, above it, is not a folder"
        if st.st_uid not in allowed:
            return f"{above}, a folder above it, is owned by uid {st.st_uid}, not root: its owner could swap it"
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return (f"{above}, a folder above it, is group- or world-writable and not sticky: anyone could swap "
                    "what is in it")
    return None


def check_ancestors(path: str) -> None:
    problem = ancestor_problem(path)
    if problem:
        refuse_state_folder(path, problem)


def refuse_state_folder(path: str, problem: str) -> NoReturn:
    raise EnvironmentNotReady(f"refusing state folder {path}: {problem}; point NETLAB_STATE_DIR at a folder "
                              "whose every parent is root's and writable by root alone")


def not_ours(path: str) -> str | None:
    """Why the lab folder ``path`` (there) is not netlab's, or None when it is (see the module's words). A folder
    that left the path while it was looked at (a ``down`` takes a lab's folder away in one step,
    lab_removal.take_away), its mark gone before the rest of it could be read, is nothing there to refuse: the
    folder at the path now is judged, or none."""
    for _ in range(100):
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None  # nothing there to refuse
        except OSError as exc:  # EACCES (not root: the caller's own error says so): not a folder to touch
            return f"cannot look at it ({exc.strerror})"
        why = _not_ours(path, st)
        try:
            now = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:
            return why
        if why is None or (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            return why
    return why


def _not_ours(path: str, st: os.stat_result) -> str | None:
    """not_ours of the folder ``path`` whose lstat was ``st``."""
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return "not a folder of netlab's"
    with contextlib.suppress(OSError):
        mark = os.lstat(os.path.join(path, MARK_FILE))
        if stat.S_ISREG(mark.st_mode) and mark.st_uid == os.geteuid():
            return None
    if stat.S_IMODE(st.st_mode) == 0o700 and (_earlier_release(path) or holds_pins(path)):
        return None  # made by a release before the mark, as netlab makes them; or emptied but for its pins
    return f"it holds no {MARK_FILE} (netlab marks each lab folder it makes) and no state or lock of netlab's"


# What proves an unmarked folder an earlier release's lab folder. The state's own fields as
# realize/state_schema.py checks them (format 1, the lab, RUN_ID; tests/unit hold the two the same), read here
# without the schema (this module is every command's, the schema's pydantic is not); the lock's text as
# lockfile.name_holder writes it for LabLock ("pid N (netlab up)").
STATE_VERSION = 1
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
LOCK_TEXT = re.compile(r"^pid [1-9][0-9]* \(netlab( [^()\n]*)?\)\n$")
STATE_MAX = 16 << 20  # a state larger than this is no lab's (state_dir.STATE_MAX says why)


def _earlier_release(path: str) -> bool:
    """Whether the unmarked folder ``path`` holds a netlab state of its own lab (its name), or netlab's lock text
    with nothing beside it that netlab does not write there."""
    state = read_own(path, "state.json", STATE_MAX)
    if state is not None:
        try:
            data = json.loads(state)
        except ValueError:
            return False
        return (isinstance(data, dict) and type(data.get("version")) is int and data["version"] == STATE_VERSION
                and data.get("lab") == os.path.basename(path) and isinstance(data.get("run_id"), str)
                and RUN_ID.match(data["run_id"]) is not None)
    lock = read_own(path, "lock", 200)
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return (lock is not None and LOCK_TEXT.match(lock.decode("utf-8", "replace")) is not None
            and "state.json" not in names and all(own_name(name) for name in names))


def holds_pins(path: str) -> bool:
    """Whether the unmarked folder ``path`` is a lab's folder emptied by hand (``rm -rf`` of the state folder) but
    for what the kernel kept: its ``uts``, the mount point of netlab's tmpfs of UTS pins (type tmpfs, source
    :data:`PINS_FS`, in this mount namespace: only root mounts there), with nothing beside it that netlab does not
    write there. Its namespaces run on: ``down --force`` takes them, the pins, then the folder."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    if "uts" not in names or not all(own_name(name) for name in names):
        return False
    return _pins_mounted(path)


def _pins_mounted(path: str) -> bool:
    """Whether ``path``/uts is the mount point of netlab's tmpfs of UTS pins (type tmpfs, source PINS_FS)."""
    from netlab.kernel.mountinfo import read_mounts  # only for a folder without the mark: not plan's nor validate's

    point = os.path.join(os.path.realpath(path), "uts")
    return any(m.point == point and (m.fstype, m.source) == ("tmpfs", PINS_FS) for m in read_mounts())


def foreign_beside_pins(path: str) -> list[str]:
    """The names netlab does not write in the unmarked 0700 folder ``path`` of this user's whose ``uts`` is
    netlab's tmpfs of UTS pins (a lab's folder emptied by hand, then given a file of someone's), sorted; [] for
    any other folder. Such a folder stays someone else's (nothing is written or removed in it); its refusal says
    that moving these out lets ``down --force`` take the lab down (:func:`holds_pins`)."""
    try:
        st = os.lstat(path)
        names = os.listdir(path)
    except OSError:
        return []
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700 \
            or "uts" not in names or MARK_FILE in names:
        return []
    foreign = sorted(name for name in names if not own_name(name))
    return foreign if foreign and _pins_mounted(path) else []


def read_own(path: str, name: str, limit: int) -> bytes | None:
    """``name`` in the folder ``path``: its bytes when it is a regular file of this user's (never through a
    symlink, never waiting on a FIFO) no longer than ``limit``; None otherwise."""
    try:
        fd = os.open(os.path.join(path, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def renameat2(old: str, new: str, dir_fd: int = AT_FDCWD) -> None:
    """Rename ``old`` to ``new`` (both in the open folder ``dir_fd``, or paths) without replacing anything: OSError
    EEXIST when ``new`` is there; EINVAL on a file system without RENAME_NOREPLACE."""
    from netlab.kernel import libc  # here: `plan` reads state through this module, and loads no kernel code

    if libc.handle().renameat2(dir_fd, os.fsencode(old), dir_fd, os.fsencode(new), RENAME_NOREPLACE) != 0:
        raise libc.os_error(filename=new)


def make(path: str, lab: str) -> bool:
    """Make the lab folder ``path``, marked, as one step: True when made, False when something is there already.
    Raises OSError as os.mkdir does."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}{TEMP_INFIX}{os.getpid()}")
    drop_dead_temps(path)
    if os.path.lexists(path):
        return False
    _drop(tmp)  # left by a process of this pid that was killed there
    os.mkdir(tmp, 0o700)
    try:
        mark(tmp, lab, _starttime(os.getpid()))
        try:
            renameat2(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            os.mkdir(path, 0o700)  # a file system without RENAME_NOREPLACE: made, then marked
            mark(path, lab)
        return True
    except FileExistsError:
        return False
    finally:
        _drop(tmp)


def drop_dead_temps(path: str) -> None:
    """Remove the temporary folders ``.<lab>.tmp.<pid>`` of :func:`make` for the lab folder ``path`` that a process
    killed there left (their mark alone, or nothing: anything else in one keeps it), when that process is proven
    gone: no process has the pid, or a zombie, or one whose starttime is not the one the mark holds (the pid
    reused); a mark without it (an earlier release's, or a full disk's): one that started after the folder was
    last changed, by the wall clock. Only this lab's names, only folders of this user's that are not symlinks."""
    parent, base = os.path.split(path)
    prefix = f".{base}{TEMP_INFIX}"
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):] if name.startswith(prefix) else ""
        if not pid.isdigit() or pid != str(int(pid)) or int(pid) == os.getpid():  # ours: make drops it
            continue
        tmp = os.path.join(parent, name)
        try:
            before = os.lstat(tmp)
            if not stat.S_ISDIR(before.st_mode) or before.st_uid != os.geteuid():
                continue
            started = (read_own(tmp, MARK_FILE, 32) or b"").strip()
            if not _maker_gone(int(pid), before, started if started.isdigit() else None):
                continue
            held = os.listdir(tmp)
            after = os.lstat(tmp)
        except OSError:
            continue
        if held in ([], [MARK_FILE]) and (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns):
            _drop(tmp)


def _maker_gone(pid: int, st: os.stat_result, started: bytes | None) -> bool:
    """Whether process ``pid`` cannot be the one that made the folder of stat ``st`` and is still making it.
    ``started``: the maker's starttime its mark holds (None: an old mark, then the wall clock says it)."""
    try:
        fields = _proc_stat(pid)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if fields[:1] in ([b"Z"], [b"X"]):  # exited: its make goes no further
        return True
    if len(fields) <= 19:
        return False
    if started is not None:  # both boot-relative: no step of the wall clock moves them
        return fields[19] != started
    since_boot = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return time.time() - since_boot > st.st_mtime + 2  # started after the folder was made: a second's margin more


def _proc_stat(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat after the command's name (the 3rd on: state, ..., starttime at [19])."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rpartition(b")")[2].split()


def _starttime(pid: int) -> bytes | None:
    """When process ``pid`` started: field 22 of /proc/PID/stat, clock ticks after boot (None: not readable)."""
    try:
        fields = _proc_stat(pid)
    except OSError:
        return None
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else None


def _drop(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(tmp, MARK_FILE))
    with contextlib.suppress(OSError):
        os.rmdir(tmp)


def mark(path: str, lab: str, started: bytes | None = None) -> None:
    """Write netlab's mark in the lab folder ``path`` (kept when one is there), holding ``started``, the starttime of
    the process making it under a temporary name (:func:`make`), when given."""
    try:  # its name, type and owner are the mark (a full disk still makes the folder: an empty one)
        fd = os.open(os.path.join(path, MARK_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    try:
        if started is not None:
            with contextlib.suppress(OSError):
                os.write(fd, started)
    finally:
        os.close(fd)


def own_name(name: str) -> bool:
    """Whether ``name`` in a lab's folder is one netlab writes there."""
    if name in OWN_FILES or name in OWN_DIRS:
        return True
    base, infix, pid = name.rpartition(TEMP_INFIX)
    return bool(infix) and base in OWN_FILES and pid.isdigit()


# What ``down`` says of a name it leaves in a lab's folder (lab_removal.remove_own), after the path.
NOT_NETLABS = "not netlab's"
ON_A_MOUNT = "a mount point (a bind mount, or another file system), not netlab's: nothing in it is touched"
A_SYMLINK = "a symlink, never followed: nothing it points to is touched"
NOT_A_FOLDER = "not a folder, not netlab's: nothing is written or removed there"


def mount_id(fd: int) -> int | None:
    """The id of the mount the open file ``fd`` is on (``mnt_id`` of /proc/self/fdinfo, proc(5)): two folders of one
    file system with the same st_dev may be on two mounts (a bind mount of a user's folder); None: unreadable."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key == "mnt_id":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _mount_of_name(fd: int, name: str) -> int | None:
    """The mount id of ``name`` in the open folder ``fd`` (not followed: a symlink's own); None: unreadable."""
    try:
        sub = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return None
    try:
        return mount_id(sub)
    finally:
        os.close(sub)


def same_mount(fd: int, name: str, mnt: tuple[int, int | None]) -> bool:
    """Whether ``name`` in the open folder ``fd`` is on the mount ``mnt`` (its device and mount id): a bind mount of
    a folder of the same file system has the same st_dev, its own mount id."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return st.st_dev == mnt[0] and (mnt[1] is None or _mount_of_name(fd, name) == mnt[1])


def on_another_mount(fd: int, name: str) -> bool:
    """Whether ``name`` in the open folder ``fd`` is a mount point (a user's file or folder bind-mounted there);
    False when it is not there."""
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    return not same_mount(fd, name, lab_mount(fd))


def lab_mount(fd: int) -> tuple[int, int | None]:
    """The mount the open folder ``fd`` is on: its device and mount id (:func:`mount_id`)."""
    return os.fstat(fd).st_dev, mount_id(fd)


def on_mount(fd: int, mnt: tuple[int, int | None]) -> bool:
    """Whether the open file ``fd`` is on the mount ``mnt`` (:func:`lab_mount`)."""
    return os.fstat(fd).st_dev == mnt[0] and (mnt[1] is None or mount_id(fd) == mnt[1])


def open_lab(root: str, lab: str) -> int:
    """The lab folder ``root``/``lab``, opened fd-relative (no symlink followed at either). Raises OSError."""
    rfd = os.open(root, DIR)
    try:
        return os.open(lab, DIR, dir_fd=rfd)
    finally:
        os.close(rfd)


def open_folder(fd: int, name: str, mnt: tuple[int, int | None], create: bool = False,
                mode: int = 0o700) -> tuple[int | None, str | None]:
    """The folder ``name`` in the open folder ``fd`` of a lab's folder on the mount ``mnt`` (the lab folder's),
    opened for the caller (who closes it): (fd, None); (None, None) when it is not there. The one rule for every
    folder netlab writes or removes in below a lab's folder, which a user may have made theirs: (None, why) when
    it is a symlink (:data:`A_SYMLINK`, never followed), a mount point of anything, a folder or a file
    (:data:`ON_A_MOUNT`: a bind mount must be unmounted, not moved), or any other thing that is not a folder
    (:data:`NOT_A_FOLDER`: a file of someone's, never taken for an empty folder). ``create``: made (``mode``)
    when missing. Raises OSError as mkdir and open do (a swap between the look and the open, too)."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=fd)
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        return None, A_SYMLINK
    if not stat.S_ISDIR(st.st_mode):
        return None, NOT_A_FOLDER if same_mount(fd, name, mnt) else ON_A_MOUNT
    sub = os.open(name, DIR, dir_fd=fd)
    if not on_mount(sub, mnt):  # a folder mounted there (or since it was looked at)
        os.close(sub)
        return None, ON_A_MOUNT
    return sub, None


def open_sub(root: str, lab: str, sub: str) -> tuple[int | None, str | None]:
    """The folder ``sub`` of the lab folder ``root``/``lab`` as :func:`open_folder` opens it, for the caller to
    remove or write in by ``dir_fd`` (and close): (fd, None); (None, why) when it is not one netlab may touch;
    (None, None) when it, or the lab's folder, is not there or cannot be opened (nothing in it to touch)."""
    try:
        fd = open_lab(root, lab)
    except OSError:
        return None, None
    try:
        return open_folder(fd, sub, lab_mount(fd))
    except OSError:
        return None, None
    finally:
        os.close(fd)


def sub_problem(root: str, lab: str, sub: str) -> str | None:
    """Why the folder ``sub`` of the lab folder ``root``/``lab`` is not one netlab may write or remove in, in
    :func:`open_folder`'s words; None when it is a folder of the lab's own mount, or not there."""
    fd, why = open_sub(root, lab, sub)
    if fd is not None:
        os.close(fd)
    return why
