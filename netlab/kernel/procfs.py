"""A procfs of netlab's own, not attached anywhere, for the sysctl files of many namespaces (kernel/procsys.py).

Under ``/proc/sys/net`` each network namespace has its own ``ipv4``, ``ipv6``,
``core`` ... folders, all with the same name and parent: the dentry cache keeps
one entry per namespace looked at, hashed alike, and a lookup of ``ipv4`` goes
through all of them (each compared to the thread's namespace,
``proc_sys_compare``). They stay cached until the namespace goes, so the k-th
namespace an ``up`` makes pays for the k-1 before it and for every other one
looked at on the machine: ~110 us a lookup at 500 namespaces, against ~12 us.

Since Linux 5.8 each procfs mount is a superblock of its own, with a dentry
cache of its own. netlab makes one with ``fsopen``/``fsmount`` (a mount that is
only a file descriptor: no path, nothing in any mount table) and makes a new
one after ``RENEW`` uses (one or two per namespace); the old one's dentries go with it. Where that is not
allowed (a container whose /proc has masked parts: "mount too revealing",
EPERM), would open more than /proc/sys does (read-only, as a container's) or
gains nothing (an older kernel gives the same superblock), the sysctl files
are opened under /proc/sys.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import threading

from netlab.kernel import libc

# The mount API's syscalls (Linux 5.2) came after the architectures' tables were aligned (5.1): fsopen, fsconfig
# and fsmount are 430-432 on every architecture of this list (x86_64 with 64-bit pointers only: x32's are offset).
# Elsewhere (alpha 540-542, MIPS +4000/5000/6000, ia64's own table) netlab does not guess: /proc/sys then.
_ALIGNED = {"x86_64", "i386", "i486", "i586", "i686", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv8l",
            "riscv64", "ppc64le", "ppc64", "ppc", "s390x", "loongarch64"}
_FSOPEN, _FSCONFIG, _FSMOUNT = 430, 431, 432
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC, _FSCONFIG_CMD_CREATE = 1, 1, 6
# Openings of a procfs's ``sys`` (one or two per namespace made: each batch of sysctl writes in it) before the
# next procfs: its lookups walk at most this many entries each, and making a new one (~20 us, and ~0.7 ms of
# waiting in the thread that lets the old one go) is paid once.
RENEW = 32
# Errors that say netlab can have no procfs of its own here at all (no mount API, not allowed, or a procfs with
# masked parts: "mount too revealing"); any other (out of descriptors, of memory) is this moment's: tried again.
_NEVER = {errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENODEV, errno.EOPNOTSUPP}


def syscalls_known(machine: str | None = None, pointer_size: int | None = None) -> bool:
    """Whether the mount API's syscall numbers of this machine are the aligned table's (:data:`_ALIGNED`)."""
    machine = platform.machine() if machine is None else machine
    pointer_size = ctypes.sizeof(ctypes.c_void_p) if pointer_size is None else pointer_size
    return machine in _ALIGNED and not (machine == "x86_64" and pointer_size != 8)


def _syscall(*args: object) -> int:
    ret = libc.handle().syscall(*args)
    if ret < 0:
        raise libc.os_error()
    return int(ret)


def mount_procfs() -> int:
    """A new procfs superblock, mounted nowhere: the descriptor of its root."""
    fs = _syscall(_FSOPEN, b"proc", _FSOPEN_CLOEXEC)
    try:
        _syscall(_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0)
        return _syscall(_FSMOUNT, fs, _FSMOUNT_CLOEXEC, 0)
    finally:
        os.close(fs)


class _OwnProc:
    """The current procfs of this process and how many times it was used; one lock for the threads that make
    namespaces side by side, and a forked child starts without the parent's (its lock may be held)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.root: int | None = None
        self.uses = 0
        self.usable = True

    def sys_dir(self) -> int | None:
        """A new descriptor of ``sys`` in the current procfs; None where netlab can have none of its own (or,
        for a moment, cannot make the next one: the caller opens /proc/sys)."""
        old = None
        try:
            with self.lock:
                if not self.usable:
                    return None
                if self.root is None or self.uses >= RENEW:
                    old, self.root, self.uses = self.root, self._new(), 0
                    if self.root is None:
                        return None
                self.uses += 1
                return os.open("sys", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root)
        finally:
            if old is not None:
                os.close(old)  # the unmount's wait, outside the lock: the other threads go on

    def _new(self) -> int | None:
        if not syscalls_known() or os.statvfs("/proc/sys").f_flag & os.ST_RDONLY:  # a container's: read-only
            self.usable = False
            return None
        try:
            root = mount_procfs()
        except OSError as exc:  # no mount API (ENOSYS), not allowed (EPERM): /proc/sys from now on
            if exc.errno in _NEVER:
                self.usable = False
            return None
        if os.fstat(root).st_dev == os.stat("/proc").st_dev:  # one superblock for all mounts (Linux < 5.8)
            os.close(root)
            self.usable = False
            return None
        return root

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.root, self.uses = None, 0  # the descriptor stays open in the child, unused: it closes at exit


OWN = _OwnProc()
os.register_at_fork(after_in_child=OWN.after_fork)
