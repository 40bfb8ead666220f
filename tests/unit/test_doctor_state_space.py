"""The doctor's free-space check of the state folder, with statvfs faked (QA q53 1 and 5): netlab runs as root, so
what it may write is f_bfree (ext4 keeps 5% for root; df's Avail, f_bavail, is 0 on a disk it shows 100% full),
and a filesystem with no inode left (a tmpfs with nr_inodes=) fails every file `up` makes, bytes free or not.
The real filesystems: tests/integration/test_state_space_live.py."""

from __future__ import annotations

import os

import pytest

from netlab import doctor
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features
from test_doctor import DEFAULT, by_name, install_machine

MiB = 1 << 20


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def vfs(bfree: int, bavail: int, ffree: int = 100000, files: int = 200000, bsize: int = 1024):
    return os.statvfs_result((bsize, bsize, 1 << 20, bfree, bavail, files, ffree, ffree, 0, 255))


@pytest.mark.parametrize("euid, free, inodes", [(0, 3603 * 1024, 12), (1000, 0, 12)])
def test_root_may_write_the_blocks_kept_for_root(monkeypatch, euid, free, inodes):
    """QA q53 1's ext4 (-m 20, filled by nobody): bfree 3603, bavail 0. Root (netlab) may write 3.5 MiB there."""
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(os, "statvfs", lambda path: vfs(3603, 0, ffree=12))
    facts = features._space("/x")
    assert (facts["free_bytes"], facts["user_free_bytes"], facts["free_inodes"]) == (free, 0, inodes)


def test_a_filesystem_without_a_fixed_number_of_inodes_has_none_to_count(monkeypatch):
    monkeypatch.setattr(os, "statvfs", lambda path: vfs(5000, 5000, ffree=0, files=0))  # btrfs says f_files 0
    assert features._space("/x")["free_inodes"] is None


def space(machine, **facts) -> doctor.Check:
    machine.dir = features.DirFacts("/run/netlab", False, measured="/run", read_only=False, **facts)
    return by_name(doctor.report(DEFAULT, for_this_lab=True))["state-space"]


def test_a_disk_full_for_users_but_not_for_root_is_no_fail_and_says_both(machine):
    check = space(machine, free_bytes=3603 * 1024, user_free_bytes=0)
    assert check.line() == (
        "warn  host state free space: 3.5 MiB free on /run (0 B for users other than root: the rest is kept for "
        "root, which netlab is) (under 16.0 MiB: container logs may fill it); fix: free space there, or point "
        "NETLAB_STATE_DIR to a larger filesystem")
    doctor.require_for(DEFAULT)  # up goes ahead
    assert space(machine, free_bytes=64 * MiB, user_free_bytes=64 * MiB).line() == \
        "ok    host state free space: 64.0 MiB free on /run"  # the same figure is said once


@pytest.mark.parametrize("inodes", [0, 1, 3])
def test_no_inode_left_is_a_fail_and_up_refuses(machine, inodes):
    check = space(machine, free_bytes=4 * MiB, user_free_bytes=4 * MiB, free_inodes=inodes)
    assert check.line() == (
        f"FAIL  host state free space: 4.0 MiB free on /run, but {inodes} inodes free (no file left: not even a "
        "lab's folder and its first state files, 4, fit); fix: remove files there, or point NETLAB_STATE_DIR to a "
        "filesystem with free inodes")
    with pytest.raises(EnvironmentNotReady, match=f"^FAIL  host state free space: 4.0 MiB free on /run, but {inodes} "):
        doctor.require_for(DEFAULT)


def test_few_inodes_left_is_a_warning_and_enough_says_nothing_of_them(machine):
    check = space(machine, free_bytes=64 * MiB, user_free_bytes=64 * MiB, free_inodes=100)
    assert check.status == doctor.WARN and check.detail == (
        "64.0 MiB free on /run, but 100 inodes free (under 1024: a lab takes about 20 files and 3 more a pod; an up "
        "that runs out of them fails and is rolled back)")
    doctor.require_for(DEFAULT)
    assert space(machine, free_bytes=64 * MiB, free_inodes=1024).line() == \
        "ok    host state free space: 64.0 MiB free on /run"
    assert space(machine, free_bytes=64 * MiB, free_inodes=None).status == doctor.OK  # btrfs: no fixed number
    # bytes full and inodes out: the bytes' line (either is the reason up refuses)
    assert "full: not even a lab's first state write fits" in space(machine, free_bytes=0, free_inodes=0).detail
