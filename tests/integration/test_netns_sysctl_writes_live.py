"""A namespace's sysctls as netlab writes and reads them (root): through a procfs of its own (kernel/procfs.py),
whose dentry cache holds only the namespaces it looked at since it was made."""

from __future__ import annotations

import os
import uuid

import pytest
from helpers import in_netns
from netlab.kernel import netns as nsmod, procfs, procsys
from netlab.kernel.live import LiveKernel

pytestmark = pytest.mark.root

ASKED = [("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.ip_forward", "1"),
         ("net.ipv4.conf.all.route_localnet", "1")]


@pytest.fixture
def made():
    tag = f"sw{uuid.uuid4().hex[:6]}"
    names = [f"{tag}-{i}" for i in range(procfs.RENEW + 2)]
    k = LiveKernel()
    try:
        yield k, tag, names
    finally:
        for name in names:
            if nsmod.exists(name):
                k.delete_netns(name)
        k.close()


def sysctls(netns: str, keys: list[str]) -> dict[str, str]:
    """sysctl(8)'s values of ``keys`` in the namespace."""
    return dict(zip(keys, in_netns(netns, "sysctl", "-n", *keys, check=True).stdout.split()))


def test_namespaces_made_one_after_another_end_with_every_value_asked_and_their_tag(made):
    """More than one procfs's worth (RENEW): each namespace's files are its own, whichever procfs opened them."""
    k, tag, names = made
    for name in names:
        k.create_netns(name, nsmod.make_tag(tag, "run", "1234abcd"), ASKED)
    for name in names:
        assert sysctls(name, [key for key, _ in ASKED]) == dict(ASKED), name
        assert nsmod.read_tag(name) == nsmod.make_tag(tag, "run", "1234abcd")


def own_procfs_here() -> bool:
    """Whether this machine lets netlab have a procfs of its own that is not /proc's (kernel/procfs.py): a kernel
    with the mount API (5.2) that gives each procfs mount a superblock (5.8), a /proc/sys that is not read-only."""
    if not procfs.syscalls_known() or os.statvfs("/proc/sys").f_flag & os.ST_RDONLY:
        return False
    try:
        fd = procfs.mount_procfs()
    except OSError:
        return False
    try:
        return os.fstat(fd).st_dev != os.stat("/proc").st_dev
    finally:
        os.close(fd)


def test_sysctl_files_are_opened_in_a_procfs_of_netlabs_own_renewed_after_some_namespaces(made):
    """Where the machine allows one (this VM does); /proc/sys's own files where it does not, as before."""
    k, tag, names = made
    k.create_netns(names[0], nsmod.make_tag(tag, "run"), ASKED)
    seen = set()
    with nsmod.entered(names[0]):
        for _ in range(procfs.RENEW + 1):
            with procsys._SysctlDirs() as dirs:
                fd = dirs._dir(procsys.SYSCTL_ROOT)
                assert fd is not None
                seen.add(os.fstat(fd).st_dev)
        assert procsys.read_sysctl_here("net.ipv4.conf.all.route_localnet") == "1"
    if own_procfs_here():
        assert len(seen) >= 2 and os.stat("/proc").st_dev not in seen
    else:
        assert seen == {os.stat("/proc").st_dev}
