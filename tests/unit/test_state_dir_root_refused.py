"""A write to the state directory refused to root (EACCES, EPERM) says what refused it, not "run it with sudo"
(realize/state_dir.state_dir_error, realize/root_refused.py; no root: the kernel's answers are faked)."""

from __future__ import annotations

import errno

import pytest

from netlab.realize import root_refused, state_dir

PATH = "/srv/labs/state"


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(state_dir.os, "geteuid", lambda: 0)
    monkeypatch.setattr(root_refused, "inode_flags", lambda p: None)
    monkeypatch.setattr(root_refused, "mount_of", lambda p: root_refused.Mount("/", "ext4", ("rw", "relatime")))
    monkeypatch.setattr(root_refused, "effective_caps", lambda: 0x1FFFFFFFFFF)
    monkeypatch.setattr(root_refused, "lsm_label", lambda: None)
    monkeypatch.setattr(root_refused, "_read", lambda p: None)
    return monkeypatch


def said(code: int = errno.EACCES) -> str:
    return str(state_dir.state_dir_error(PATH, OSError(code, "Permission denied")))


def test_an_immutable_folder_is_named_with_its_flag(as_root):
    as_root.setattr(root_refused, "inode_flags", lambda p: root_refused.FS_IMMUTABLE_FL if p == "/srv/labs" else 0)
    text = said(errno.EPERM)
    assert "sudo" not in text
    assert text == ("cannot write /srv/labs/state: permission denied to root: /srv/labs is immutable (lsattr -d "
                    "/srv/labs shows 'i'; chattr -i /srv/labs lifts it); or point NETLAB_STATE_DIR at a directory "
                    "root may write")


def test_a_read_only_mount_nfs_a_dropped_capability_and_a_security_module_are_each_said(as_root):
    as_root.setattr(root_refused, "mount_of", lambda p: root_refused.Mount("/srv", "ext4", ("ro", "relatime")))
    assert "/srv/labs is on a read-only mount (/srv, ext4)" in said()
    as_root.setattr(root_refused, "mount_of", lambda p: root_refused.Mount("/srv", "nfs4", ("rw",)))
    assert "NFS (/srv), whose server maps root to nobody (root_squash)" in said()
    as_root.setattr(root_refused, "mount_of", lambda p: None)
    as_root.setattr(root_refused, "effective_caps", lambda: 0x1FFFFFFFFFF & ~(1 << root_refused.CAP_DAC_OVERRIDE))
    assert "lacks CAP_DAC_OVERRIDE" in said()
    as_root.setattr(root_refused, "effective_caps", lambda: 0x1FFFFFFFFFF)
    as_root.setattr(root_refused, "lsm_label", lambda: "docker-default (enforce)")
    assert "a security module confines this process (docker-default (enforce))" in said()
    as_root.setattr(root_refused, "lsm_label", lambda: None)
    assert "or the file system refused it; the audit log says which" in said()
    assert all("sudo" not in said(code) for code in (errno.EACCES, errno.EPERM))


def test_not_root_is_still_told_to_use_sudo(monkeypatch):
    monkeypatch.setattr(state_dir.os, "geteuid", lambda: 1000)
    assert said().endswith("run it with sudo")


def test_the_mount_a_path_is_on_is_the_longest_mount_point_above_it(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                    "30 22 0:40 / /srv/my\\040labs ro,nosuid - tmpfs tmpfs rw,size=10k\n"
                    "31 22 0:41 / /srv/my rw - nfs4 host:/x rw,vers=4.2\n")
    m = root_refused.mount_of("/srv/my labs/state", str(info))
    assert m == root_refused.Mount("/srv/my labs", "tmpfs", ("ro", "nosuid", "rw", "size=10k"))
    assert root_refused.mount_of("/srv/my/state", str(info)).fstype == "nfs4"
    assert root_refused.mount_of("/srv/mylabs", str(info)).point == "/"
