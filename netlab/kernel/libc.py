"""The C library, for the system calls Python's os module lacks: one handle for all of netlab, and the OSError
of a call that failed.

setns, unshare, mount and umount2 move threads between namespaces and pin them (netns.py, features.py); prctl
names threads, makes a watcher a child subreaper, ties a child's life to its parent's; inotify tells of names
coming and going in /run/netns and of a topology file's writes (events.py, file_events.py); the mount API's
syscalls make netlab's own procfs (procfs.py); statfs names the file system a log is on (fstype.py), fallocate
cuts a log's oldest blocks (workload/echo_log.py), renameat2 makes a lab's folder in one step
(realize/lab_folder.py).

The handle is the C library this process already has (``CDLL(None)``: looking it up by name,
ctypes.util.find_library, would run ldconfig), opened at its first use. It keeps errno (``use_errno``): ctypes
saves the thread's errno right after each call, so :func:`os_error` tells the failed call's error even when
Python made other system calls in between. Standard library only: the echo server (``python -I``) imports it.
"""

from __future__ import annotations

import ctypes
import os

_c_int, _c_char_p, _c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
# The argument types of the calls whose arguments ctypes would not pass right on its own (a pointer or a 64-bit
# offset where it would pass an int), and of those two modules share. prctl and syscall take varying arguments
# (an int, a name, a buffer): their callers' own.
PROTOTYPES: dict[str, list[type]] = {
    "setns": [_c_int, _c_int],
    "unshare": [_c_int],
    "inotify_init1": [_c_int],
    "inotify_add_watch": [_c_int, _c_char_p, ctypes.c_uint32],
    "statfs": [_c_char_p, _c_void_p],  # struct statfs *: a buffer of the caller's
    "fstatfs": [_c_int, _c_void_p],
    # A 64-bit off_t on every ABI: fallocate64 where the C library has it (glibc), else fallocate (musl's off_t)
    "fallocate64": [_c_int, _c_int, ctypes.c_int64, ctypes.c_int64],
    "fallocate": [_c_int, _c_int, ctypes.c_int64, ctypes.c_int64],
}
_handle: list[ctypes.CDLL] = []  # the one handle, once opened (two threads opening it at once: the first kept)


def handle() -> ctypes.CDLL:
    """The C library, its calls with :data:`PROTOTYPES`' argument types; opened on the first call. A call it
    does not have (``renameat2`` before glibc 2.28) is an AttributeError where it is used, as before."""
    if not _handle:
        lib = ctypes.CDLL(None, use_errno=True)
        for name, argtypes in PROTOTYPES.items():
            call = getattr(lib, name, None)
            if call is not None:
                call.argtypes = argtypes
        _handle.append(lib)
    return _handle[0]


def os_error(what: str = "", filename: str | int | None = None, kind: type[OSError] = OSError,
             strerror: bool = True) -> OSError:
    """The OSError of the C library call that just failed in this thread (its errno, as ctypes kept it): the
    C library's text for the errno, after ``what: `` when ``what`` is given, and ``filename`` when it is not
    None (``""`` too). An OSError of an errno that has a subclass is that subclass (FileNotFoundError ...);
    ``kind``: a subclass of the caller's instead. ``strerror=False``: ``what`` alone is the text."""
    err = ctypes.get_errno()
    text = (f"{what}: {os.strerror(err)}" if what else os.strerror(err)) if strerror else what
    return kind(err, text) if filename is None else kind(err, text, filename)


def inotify_init1(flags: int) -> int:
    """An inotify(7) descriptor (events.py's on /run/netns, file_events.py's on a topology file's folder).
    OSError ``inotify_init1``."""
    fd = int(handle().inotify_init1(flags))
    if fd < 0:
        raise os_error("inotify_init1", strerror=False)
    return fd


def inotify_add_watch(fd: int, folder: str, mask: int) -> int:
    """A watch of ``folder`` on inotify descriptor ``fd``: its watch descriptor (a folder watched twice: the same
    one). OSError ``inotify_add_watch FOLDER`` (no such folder, the user's watches limit reached)."""
    wd = int(handle().inotify_add_watch(fd, folder.encode(), mask))
    if wd < 0:
        raise os_error(f"inotify_add_watch {folder}", strerror=False)
    return wd
