"""The doctor and `up` on a real state filesystem that is full for users but not for root, or out of inodes (QA q53
1 and 5): an ext4 image on a loop device with half its blocks kept for root (`mkfs.ext4 -m 50`), filled by nobody
until df shows 0 available; a tmpfs with nr_inodes= and every inode used. Before, the doctor said the ext4 was
full ("0 B free", FAIL) and `up` refused it though root writes there; it said the tmpfs was fine (a space warning,
exit 0) and `up` then failed "No space left on device". Root, real mounts, real namespaces."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import lab_namespaces, write_topology
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root


def fill_as_nobody(path: str) -> None:
    """Write zeros to ``path`` as nobody until the disk refuses (root opens it: nobody may not reach tmp_path; the
    kernel judges each write by its writer, who may not use the blocks kept for root)."""
    with open(path, "wb") as out:
        for bs in ("64k", "1k"):
            subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "dd", "if=/dev/zero",
                            f"bs={bs}"], stdout=out, stderr=subprocess.DEVNULL)


@pytest.fixture
def ns(tmp_path):
    """The test's own mount namespace (private_mounts.py): its file system is mounted there, and the CLI that
    meets it runs there; the test reaches its files through ``ns.seen``. A killed test leaves no mount."""
    space = PrivateMounts(str(tmp_path))
    yield space
    space.close()


@pytest.fixture
def root_only_ext4(tmp_path, ns):
    """A 24 MiB ext4 of which root alone may write the last half; nobody has filled the rest."""
    image, mnt = tmp_path / "ext4.img", tmp_path / "ext4"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "24M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "50", str(image)], check=True)
    # -o loop: the loop device is the mount's (autoclear), let go with it, also when the namespace ends
    ns.run("mount", "-o", "loop", str(image), str(mnt))
    try:
        fill_as_nobody(ns.seen(str(mnt / "filler")))
        yield str(mnt)
    finally:
        ns.run("umount", str(mnt))


def one_pod(tmp_path, lab: str) -> str:
    return write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")


def test_a_disk_full_for_users_takes_a_lab_as_root(root_only_ext4, tmp_path, labs, ns):
    netlab = ns.netlab
    vfs = os.statvfs(ns.seen(root_only_ext4))
    assert vfs.f_bavail * vfs.f_frsize < 4096 and vfs.f_bfree * vfs.f_frsize > (4 << 20)  # df: 100%, Avail 0
    state = os.path.join(root_only_ext4, "state")
    os.mkdir(ns.seen(state), 0o700)
    env = {"NETLAB_STATE_DIR": state}
    doctor = netlab("doctor", env=env, check=False)
    line = next(x for x in doctor.stdout.splitlines() if "host state free space" in x)
    assert line.startswith("warn  host state free space: ") and " MiB free on " in line, line
    assert "(0 B for users other than root: the rest is kept for root, which netlab is)" in line, line
    assert "FAIL" not in line and doctor.returncode == 0, doctor.stdout
    lab = labs.name("rbs")
    try:
        up = netlab("up", "-t", one_pod(tmp_path, lab), env=env, check=False)
        assert up.returncode == 0, up.stderr
        assert lab_namespaces(lab) == [f"{lab}-a", f"{lab}-n1", f"{lab}-underlay"]
        assert os.path.exists(ns.seen(os.path.join(state, lab, "state.json")))
    finally:
        netlab("down", "--lab", lab, env=env, check=False)
    assert lab_namespaces(lab) == []


@pytest.fixture
def no_inodes(tmp_path, ns):
    """A tmpfs with bytes to spare and 12 inodes, every one of them used (the state folder is one)."""
    mnt = tmp_path / "ino"
    mnt.mkdir()
    ns.run("mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=12,mode=0700", "tmpfs", str(mnt))
    try:
        seen = ns.seen(str(mnt))
        os.mkdir(os.path.join(seen, "state"), 0o700)
        i = 0
        while os.statvfs(seen).f_ffree:
            open(os.path.join(seen, f"f{i}"), "w").close()
            i += 1
        yield str(mnt / "state")
    finally:
        ns.run("umount", str(mnt))


def test_no_inode_left_is_the_doctors_fail_and_up_refuses_with_it(no_inodes, tmp_path, labs, ns):
    netlab = ns.netlab
    env = {"NETLAB_STATE_DIR": no_inodes}
    where = os.path.dirname(no_inodes)
    doctor = netlab("doctor", env=env, check=False)
    line = ("FAIL  host state free space: 4.0 MiB free on {}, but 0 inodes free (no file left: not even a lab's folder "
            "and its first state files, 4, fit); fix: remove files there, or point NETLAB_STATE_DIR to a filesystem "
            "with free inodes").format(no_inodes)
    assert line in doctor.stdout.splitlines() and doctor.returncode == 3, doctor.stdout
    lab = labs.name("rbi")
    try:
        up = netlab("up", "-t", one_pod(tmp_path, lab), env=env, check=False)
        assert (up.returncode, up.stderr.splitlines()) == (3, [f"netlab: {line}"])
        assert lab_namespaces(lab) == [] and os.listdir(ns.seen(no_inodes)) == []
    finally:
        netlab("down", "--lab", lab, env=env, check=False)
    assert sorted(os.listdir(ns.seen(where)))[0] == "f0"
