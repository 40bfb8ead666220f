"""How a process exited, read through a pidfd by whoever holds one, its parent or not.

Only a parent learns a child's exit status from ``wait``; a container that
``up`` started is re-parented to init, which reaps it and keeps nothing. Since
Linux 6.15 the kernel keeps the status with the pid itself: once the task is
reaped, ``ioctl(pidfd, PIDFD_GET_INFO)`` asked for ``PIDFD_INFO_EXIT`` answers
with it, for anyone holding a pidfd opened before (include/uapi/linux/pidfd.h).
The lab's echo server holds one per command container (workload/echoserver.py),
so ``get pods``, ``status`` and a watcher started later can say how a
container exited, as ``kubectl`` does (Completed, Error, exit code).

On an older kernel the ioctl is unknown (6.13 and 6.14 have it without the exit
status): :func:`exit_info_supported` says so, and nothing is held.
"""

from __future__ import annotations

import fcntl
import functools
import os
import struct

# struct pidfd_info, its first version (PIDFD_INFO_SIZE_VER0, 64 bytes): the mask of what to
# fill in (and what was), then ids, then the wait status at exit_code's offset.
INFO = struct.Struct("=QQ11Ii")
PIDFD_GET_INFO = (3 << 30) | (INFO.size << 16) | (0xFF << 8) | 11  # _IOWR(PIDFS_IOCTL_MAGIC, 11, struct)
PIDFD_INFO_EXIT = 1 << 3
SCM_MAX_FD = 253  # descriptors one message over a unix socket may carry (SCM_RIGHTS)


def exit_status(fd: int) -> int | None:
    """The wait status of the process behind pidfd ``fd`` once it has exited and been reaped; None while it
    runs or is a zombie, or when the kernel does not keep it (taskstats.exit_status words it as a code)."""
    buf = bytearray(INFO.size)
    struct.pack_into("=Q", buf, 0, PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(fd, PIDFD_GET_INFO, buf)
    except OSError:  # ENOTTY, EINVAL: an older kernel; ESRCH: gone, with no status kept
        return None
    fields = INFO.unpack(buf)
    return fields[-1] if fields[0] & PIDFD_INFO_EXIT else None


def pid_of(fd: int) -> int | None:
    """The pid a pidfd stands for (-1 once the process is reaped; None: not a pidfd)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as fh:
            for line in fh:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


@functools.lru_cache(maxsize=None)
def exit_info_supported() -> bool:
    """Whether this kernel keeps exit statuses for pidfds: one ``true``, started, held and reaped, says."""
    try:
        pid = os.posix_spawn("/bin/true", ["true"], {})
    except OSError:
        return False
    try:
        fd = os.pidfd_open(pid)  # our child, not reaped yet: it cannot be another process
    except OSError:
        os.waitpid(pid, 0)
        return False
    try:
        os.waitpid(pid, 0)
        return exit_status(fd) == 0
    finally:
        os.close(fd)
