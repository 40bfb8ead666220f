"""Why root was refused a write in the state directory, in words (realize/state_dir.state_dir_error).

Root's DAC override passes every file mode, so EACCES or EPERM to root is never "run it with sudo": something
else said no. In the order they are looked for, each with its fix:

- the file or its folder is immutable or append-only (``chattr +i``/``+a``; ``lsattr -d`` shows ``i``/``a``);
- its file system is mounted read-only (a read-only bind mount of a writable one says EROFS or EACCES);
- it is on NFS, whose server maps root to nobody (root_squash);
- this root lacks CAP_DAC_OVERRIDE (a container's or a unit's dropped capability): it is held to the modes;
- this root is a user namespace's, and the folder belongs to a user that namespace does not map (nobody);
- a security module (AppArmor, SELinux, ...) confines this process;
- else: none of these shows, so a security module or the file system refused it; the audit log says which.
"""

from __future__ import annotations

import fcntl
import os
import struct

from netlab.kernel.caps import effective as effective_caps  # CapEff, as the commands' own check reads it
from netlab.kernel.mountinfo import mount_of, read_mounts

FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long)
FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
CAP_DAC_OVERRIDE = 1
OVERFLOW_UID = 65534  # what the kernel shows for a uid this user namespace does not map


def inode_flags(path: str) -> int | None:
    """The inode's flags (lsattr's), or None where they cannot be read (no such file, a file system without)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
        return int(struct.unpack("i", bytes(buf[:4]))[0])
    except OSError:
        return None
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip().strip("\0") or None
    except OSError:
        return None


def unmapped_root() -> bool:
    """This root is a user namespace's that does not map the whole uid range (not the host's root)."""
    uid_map = _read("/proc/self/uid_map")
    return uid_map is not None and uid_map.split() != ["0", "0", "4294967295"]


def lsm_label() -> str | None:
    """This process's security label where a module confines it (an AppArmor profile, an SELinux domain that is
    not unconfined_t), else None."""
    label = _read("/proc/self/attr/apparmor/current") or _read("/proc/self/attr/current")
    if not label or label == "unconfined" or "unconfined_t" in label or label == "kernel":
        return None
    return label


def cause(path: str) -> str:
    """Why root may not write ``path`` (a file or directory, there or to be made), with the fix."""
    where = os.path.dirname(path) or path
    for p in (path, where):
        flags = inode_flags(p)
        if flags is not None and flags & (FS_IMMUTABLE_FL | FS_APPEND_FL):
            what, flag = ("immutable", "i") if flags & FS_IMMUTABLE_FL else ("append-only", "a")
            return f"{p} is {what} (lsattr -d {p} shows '{flag}'; chattr -{flag} {p} lifts it)"
    m = mount_of(os.path.realpath(where), read_mounts())
    if m is not None and "ro" in m.options:
        return f"{where} is on a read-only mount ({m.point}, {m.fstype}); mount it read-write"
    if m is not None and m.fstype.startswith("nfs"):
        return f"{where} is on NFS ({m.point}), whose server maps root to nobody (root_squash)"
    caps = effective_caps()
    if caps is not None and not caps & (1 << CAP_DAC_OVERRIDE):
        return ("this root lacks CAP_DAC_OVERRIDE (a container's or a service unit's dropped capability), so file "
                "modes bind it as any user")
    try:
        owner = os.stat(where).st_uid
    except OSError:
        owner = None
    if owner == OVERFLOW_UID and unmapped_root():
        return (f"this root is a user namespace's, and {where} belongs to a user it does not map (shown as "
                f"{OVERFLOW_UID})")
    label = lsm_label()
    if label:
        return f"a security module confines this process ({label}); its audit log names the denial"
    lsms = _read("/sys/kernel/security/lsm")
    return ("no immutable flag, read-only mount or missing capability explains it, so a security module"
            f"{f' ({lsms})' if lsms else ''} or the file system refused it; the audit log says which "
            "(journalctl -k | grep -i denied)")
