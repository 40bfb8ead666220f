"""The type of the file system a folder is on, as statfs(2) tells it (``f_type``, the super block's magic).

Named as ``/proc/self/mountinfo`` and ``df -T`` name it where the magic is a known one (ext2, ext3 and ext4 share
theirs: ``ext2/3/4``), else in hex (``0x...``): the file systems a container's log may be kept on, and those whose
files cannot have their oldest blocks cut (network and FUSE file systems: workload/echo_log.py).
"""

from __future__ import annotations

import ctypes
import os

from netlab.kernel import libc

# linux/magic.h (and the file systems' own headers for those it lacks)
NAMES = {
    0x01021994: "tmpfs", 0x858458F6: "ramfs", 0xEF53: "ext2/3/4", 0x58465342: "xfs", 0x9123683E: "btrfs",
    0xF2F52010: "f2fs", 0x2FC12FC1: "zfs", 0x794C7630: "overlay", 0x6969: "nfs", 0x01021997: "9p",
    0x65735546: "fuse", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x786F4256: "vboxsf", 0x73717368: "squashfs",
    0x4D44: "vfat", 0x5346544E: "ntfs", 0x0BD00BD0: "lustre", 0x00C36400: "ceph", 0x47504653: "gpfs",
}


def fs_type(path: str | int) -> str:
    """The type of the file system ``path`` (or an open descriptor: fstatfs) is on: its name (:data:`NAMES`), else
    its magic in hex. Raises OSError."""
    call = libc.handle().fstatfs if isinstance(path, int) else libc.handle().statfs  # libc.PROTOTYPES
    buf = ctypes.create_string_buffer(256)  # struct statfs: f_type (a long) first, 120 bytes on 64-bit ABIs
    if call(path if isinstance(path, int) else os.fsencode(path), buf) != 0:
        raise libc.os_error(filename=path)
    magic = ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    return NAMES.get(magic, f"0x{magic:x}")
