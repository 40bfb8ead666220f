"""/proc/self/mountinfo read and searched (kernel/mountinfo.py), on tables written here: no root, no mount."""

from __future__ import annotations

from netlab.kernel import mountinfo
from netlab.kernel.mountinfo import Mount, mount_of, parse_mount, read_mounts, unescape

TABLE = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw",
    r"30 22 0:40 / /srv/my\040labs ro,nosuid - tmpfs tmpfs rw,size=10k",
    "31 22 0:41 / /srv/my rw - nfs4 host:/x rw,vers=4.2",
    r"801 22 0:61 / /run/netlab/my\040lab/uts rw,nosuid shared:40 - tmpfs netlab-uts rw,size=64k,mode=700",
    r"802 801 0:4 net:[4026532311] /run/netlab/my\040lab/uts/duo rw - nsfs nsfs rw",
    r"40 22 8:1 /run/netlab/my\040lab /tmp/a\011b\012c\134d rw - ext4 /dev/vda rw",
]


def mounts(lines=TABLE) -> list[Mount]:
    return [m for m in map(parse_mount, lines) if m is not None]


def test_a_path_is_unescaped_as_the_kernel_escapes_it():
    """The kernel's mangle() writes a space, tab, newline and backslash as octal escapes; nothing else is one."""
    assert unescape(r"/srv/my\040labs") == "/srv/my labs"
    assert unescape(r"a\011b\012c\134d") == "a\tb\nc\\d"
    assert unescape(r"/x\134040") == "/x\\040"  # a backslash, then the digits 040: not a space
    assert unescape("/plain/path") == "/plain/path"


def test_a_line_gives_its_mount_point_root_device_type_source_and_options():
    bind = parse_mount(TABLE[5])
    assert bind == Mount(point="/tmp/a\tb\nc\\d", root="/run/netlab/my lab", dev="8:1", fstype="ext4",
                         source="/dev/vda", options=("rw", "rw"))
    pins = parse_mount(TABLE[3])  # optional fields (shared:40) before the separator are no options
    assert pins is not None and (pins.fstype, pins.source) == ("tmpfs", "netlab-uts")
    assert pins.options == ("rw", "nosuid", "rw", "size=64k", "mode=700")
    assert parse_mount("22 1 8:1 / /") is None and parse_mount("") is None  # short of the kernel's fields


def test_the_mount_a_path_is_on_is_the_deepest_mount_point_above_it():
    table = mounts()
    assert mount_of("/srv/my labs/state", table) == Mount("/srv/my labs", "/", "0:40", "tmpfs", "tmpfs",
                                                         ("ro", "nosuid", "rw", "size=10k"))
    assert mount_of("/srv/my/state", table).fstype == "nfs4"
    assert mount_of("/srv/my", table).fstype == "nfs4"  # the mount point itself
    assert mount_of("/srv/mylabs", table).point == "/"  # a prefix of the name is no folder above it
    assert mount_of("/run/netlab/my lab/uts", table).source == "netlab-uts"
    assert mount_of("/run/netlab/my lab/uts/duo", table).fstype == "nsfs"
    assert mount_of("/run/netlab", table).point == "/"
    assert mount_of("/srv/x", []) is None


def test_of_several_mounts_on_one_point_the_last_mounted_is_the_one_seen():
    # Someone else's mount over the lab's tmpfs: a path there reaches theirs.
    over = mounts(TABLE + [r"900 801 0:70 / /run/netlab/my\040lab/uts rw - tmpfs other rw"])
    assert mount_of("/run/netlab/my lab/uts", over).source == "other"


def test_the_table_is_read_from_mountinfo_and_is_empty_when_it_cannot_be(tmp_path, monkeypatch):
    table = tmp_path / "mountinfo"
    table.write_text("\n".join(TABLE) + "\n")
    monkeypatch.setattr(mountinfo, "MOUNTINFO", str(table))
    assert read_mounts() == mounts()
    assert read_mounts(str(tmp_path / "none")) == []
    assert "/" in [m.point for m in read_mounts("/proc/self/mountinfo")]  # this process's own: a root at least
