"""Sysctls of the calling thread's network namespace, read and written as files under /proc/sys.

A network namespace has its own copy of ``/proc/sys/net``: the same names,
other values (``net.ipv4.ip_forward`` of a node is not the host's). A thread
that has entered a namespace (kernel/netns.entered) and opens those files
reads and writes that namespace's. Keys are given in sysctl(8)'s spelling
(``net.ipv4.conf.eth0.rp_filter``) and walked one directory at a time.
"""

from __future__ import annotations

import errno
import os
from typing import Sequence

from netlab.kernel import procfs, testhooks
from netlab.model.sysctl_names import conf_name

PROC_SYS = "/proc/sys"
SYSCTL_ROOT = PROC_SYS
# A kernel without IPv6 (booted with ipv6.disable=1, or built without it) has no net/ipv6 folder under
# /proc/sys, in any namespace. IPv6 is then off everywhere, which is all a lab asks of it (plan/sysctls.py:
# disable_ipv6 = 1): there such a key reads as "1", and writing "1" to it does nothing. Every other key of
# the folder stays absent (None when read; writing it raises FileNotFoundError).
IPV6_DIR = SYSCTL_ROOT + "/net/ipv6"


def sysctl_path(key: str) -> str:
    # A sysctl's name -> its /proc/sys path. In net.ipv4.conf.<dev>.<key> the device name may hold dots
    # (flannel.1), or sysctl(8)'s slashes for them (model/sysctl_names.py).
    conf = conf_name(key, ("conf", "neigh"))
    return SYSCTL_ROOT + "/" + (conf.path if conf is not None else key.replace(".", "/"))


def write_sysctl_here(key: str, value: str) -> None:
    """Write a sysctl of the calling thread's namespace (FileNotFoundError when it does not exist)."""
    write_sysctls_here([(key, value)])


def read_sysctl_here(key: str) -> str | None:
    """A sysctl of the calling thread's namespace; None when it does not exist (no such interface)."""
    return read_sysctls_here([key])[key]


def kernel_has_ipv6() -> bool:
    """Whether the kernel has IPv6 (IPV6_DIR exists; the test hook NETLAB_TEST_NO_IPV6 says it has not)."""
    return not testhooks.NO_IPV6 and os.path.isdir(IPV6_DIR)


class _SysctlDirs:
    """Sysctl files of the calling thread's namespace, opened by walking /proc/sys one directory at a time (that of
    netlab's own procfs where it has one, kernel/procfs.py).

    Each directory is opened once (``openat`` from its parent's descriptor)
    for all its files. A namespace's sysctl directories exist once per
    namespace under the same names, so a whole path given to one open(2) is
    walked a second time under locks; with hundreds of namespaces that costs
    five times as much as these short steps. Use as a context manager.
    """

    def __init__(self) -> None:
        self.dirs: dict[str, int | None] = {}

    def __enter__(self) -> "_SysctlDirs":
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.dirs.values():
            if fd is not None:
                os.close(fd)

    def _dir(self, path: str) -> int | None:
        """A descriptor of directory ``path`` (under /proc/sys), opened from its parent's; None if absent."""
        if path not in self.dirs:
            parent, _, name = path.rpartition("/")
            try:
                if path == IPV6_DIR and testhooks.NO_IPV6:
                    self.dirs[path] = None  # as the kernel of a host without IPv6 shows it
                elif path == SYSCTL_ROOT:
                    own = procfs.OWN.sys_dir() if path == PROC_SYS else None  # procfs.py: a dentry cache of its own
                    self.dirs[path] = own if own is not None else os.open(path, os.O_RDONLY | os.O_DIRECTORY
                                                                          | os.O_CLOEXEC)
                else:
                    base = self._dir(parent)
                    self.dirs[path] = (None if base is None else
                                       os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=base))
            except FileNotFoundError:
                self.dirs[path] = None
        return self.dirs[path]

    def open(self, key: str, flags: int) -> int | None:
        """A descriptor of sysctl ``key``'s file; None when it does not exist (no such interface)."""
        folder, _, name = sysctl_path(key).rpartition("/")
        where = self._dir(folder)
        if where is None:
            return None
        try:
            return os.open(name, flags | os.O_CLOEXEC, dir_fd=where)
        except FileNotFoundError:
            return None

    def ipv6_off_by_kernel(self, key: str) -> bool:
        """``key`` is a ``disable_ipv6`` of a kernel without IPv6 (IPV6_DIR): off, and nothing to write."""
        conf = conf_name(key)  # all's and default's too: the kernel has no IPv6 folder at all
        return conf is not None and (conf.family, conf.key) == ("ipv6", "disable_ipv6") and self._dir(IPV6_DIR) is None


def read_sysctls_here(keys: Sequence[str]) -> dict[str, str | None]:
    """Sysctls of the calling thread's namespace (None where one does not exist), read together."""
    out: dict[str, str | None] = {}
    with _SysctlDirs() as dirs:
        for key in keys:
            fd = dirs.open(key, os.O_RDONLY)
            if fd is None:
                out[key] = "1" if dirs.ipv6_off_by_kernel(key) else None
                continue
            try:
                out[key] = os.read(fd, 4096).decode().strip()
            finally:
                os.close(fd)
    return out


def write_sysctls_here(items: Sequence[tuple[str, str]]) -> None:
    """Write sysctls of the calling thread's namespace, in order (FileNotFoundError for one that does not exist)."""
    with _SysctlDirs() as dirs:
        for key, value in items:
            fd = dirs.open(key, os.O_WRONLY)
            if fd is None and value == "1" and dirs.ipv6_off_by_kernel(key):
                continue
            if fd is None:
                raise FileNotFoundError(errno.ENOENT, "no such sysctl", sysctl_path(key))
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
