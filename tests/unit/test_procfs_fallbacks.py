"""kernel/procfs.py where netlab cannot have a procfs of its own, or not at this moment (review1 3, 5, 6): every
branch ends in /proc/sys (None) or a descriptor of a procfs's ``sys``, and no procfs is left open behind one."""

from __future__ import annotations

import errno
import os

import pytest

from netlab.kernel import procfs


class FakeMounts:
    """mount_procfs as a folder with a ``sys`` in it per call (a stand-in procfs), or the error asked."""

    def __init__(self, tmp_path, fail_at: int | None = None, err: int = errno.EMFILE):
        self.tmp_path, self.calls, self.fail_at, self.err = tmp_path, 0, fail_at, err
        self.opened: list[int] = []

    def __call__(self) -> int:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise OSError(self.err, os.strerror(self.err))
        folder = self.tmp_path / f"proc{self.calls}"
        (folder / "sys").mkdir(parents=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        self.opened.append(fd)
        return fd


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


@pytest.fixture
def own(monkeypatch):
    monkeypatch.setattr(procfs, "syscalls_known", lambda: True)
    return procfs._OwnProc()


def take(own: procfs._OwnProc, n: int) -> list[int | None]:
    out = []
    for _ in range(n):
        fd = own.sys_dir()
        out.append(fd)
        if fd is not None:
            os.close(fd)
    return out


def test_a_procfs_is_made_anew_after_renew_uses_and_the_old_one_let_go(own, tmp_path, monkeypatch):
    mounts = FakeMounts(tmp_path)
    monkeypatch.setattr(procfs, "mount_procfs", mounts)
    assert None not in take(own, procfs.RENEW + 1)
    assert mounts.calls == 2 and not is_open(mounts.opened[0]) and is_open(mounts.opened[1])
    os.close(mounts.opened[1])


def test_a_passing_failure_to_make_the_next_one_lets_the_old_one_go_and_tries_again(own, tmp_path, monkeypatch):
    """Out of descriptors for a moment: /proc/sys for that call, the old procfs closed (it was left open behind an
    unreachable descriptor), and the next call makes one again."""
    mounts = FakeMounts(tmp_path, fail_at=2)
    monkeypatch.setattr(procfs, "mount_procfs", mounts)
    assert take(own, procfs.RENEW + 1)[-1] is None
    assert not is_open(mounts.opened[0]) and own.usable
    mounts.fail_at = None
    assert take(own, 1) != [None]
    os.close(mounts.opened[-1])


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM])
def test_no_mount_api_or_not_allowed_is_proc_sys_from_then_on(own, tmp_path, monkeypatch, err):
    mounts = FakeMounts(tmp_path, fail_at=1, err=err)
    monkeypatch.setattr(procfs, "mount_procfs", mounts)
    assert take(own, 3) == [None, None, None]
    assert mounts.calls == 1 and not own.usable


def test_a_read_only_proc_sys_is_used_as_it_is(own, tmp_path, monkeypatch):
    """A container's /proc/sys, read-only: a procfs of netlab's own would let it write what that one forbids."""
    mounts = FakeMounts(tmp_path)
    monkeypatch.setattr(procfs, "mount_procfs", mounts)
    real = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda p: os.statvfs_result((0,) * 8 + (os.ST_RDONLY, 255))
                        if p == "/proc/sys" else real(p))
    assert take(own, 2) == [None, None] and mounts.calls == 0


def test_a_kernel_giving_every_procfs_mount_one_superblock_gains_nothing(own, monkeypatch):
    """Before Linux 5.8 a new procfs mount is /proc's superblock, its dentry cache the same: /proc/sys then."""
    monkeypatch.setattr(procfs, "mount_procfs", lambda: os.open("/proc", os.O_RDONLY | os.O_DIRECTORY))
    assert take(own, 2) == [None, None] and not own.usable


@pytest.mark.parametrize("machine, pointer, known", [
    ("x86_64", 8, True), ("x86_64", 4, False), ("aarch64", 8, True), ("riscv64", 8, True), ("s390x", 8, True),
    ("alpha", 8, False), ("mips64", 8, False), ("mips", 4, False), ("ia64", 8, False)])
def test_the_syscall_numbers_are_used_only_where_they_are_the_aligned_tables(machine, pointer, known):
    assert procfs.syscalls_known(machine, pointer) is known


def test_a_machine_of_other_numbers_never_calls_them(monkeypatch):
    monkeypatch.setattr(procfs, "syscalls_known", lambda: False)
    monkeypatch.setattr(procfs, "mount_procfs", lambda: pytest.fail("syscall 430 on a machine of other numbers"))
    own = procfs._OwnProc()
    assert own.sys_dir() is None and not own.usable
