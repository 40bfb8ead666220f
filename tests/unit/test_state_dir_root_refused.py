"""A write to the state directory refused to root (EACCES, EPERM) says what refused it, not "run it with sudo"
(realize/state_dir.state_dir_error, realize/root_refused.py; no root: the kernel's answers are faked)."""

from __future__ import annotations

import errno

import pytest

from netlab.kernel.mountinfo import Mount
from netlab.realize import root_refused, state_dir

PATH = "/srv/labs/state"


def on(point: str, fstype: str, options: tuple[str, ...]):
    """A stand-in for mount_of: every path is on this mount."""
    return lambda path, mounts: Mount(point, "/", "0:99", fstype, "src", options)


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(state_dir.os, "geteuid", lambda: 0)
    monkeypatch.setattr(root_refused, "inode_flags", lambda p: None)
    monkeypatch.setattr(root_refused, "mount_of", on("/", "ext4", ("rw", "relatime")))
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
    as_root.setattr(root_refused, "mount_of", on("/srv", "ext4", ("ro", "relatime")))
    assert "/srv/labs is on a read-only mount (/srv, ext4)" in said()
    as_root.setattr(root_refused, "mount_of", on("/srv", "nfs4", ("rw",)))
    assert "NFS (/srv), whose server maps root to nobody (root_squash)" in said()
    as_root.setattr(root_refused, "mount_of", lambda path, mounts: None)
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
