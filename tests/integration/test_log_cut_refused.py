"""A state folder whose file system can neither collapse nor punch a file's oldest blocks: a command container's log
cannot start over there and grows without bound. `netlab doctor` says it of a real one (ramfs, which has no
fallocate: NFSv3, 9p and some FUSE file systems answer the same EOPNOTSUPP), from a file it makes there and
removes; `up` says it once, in one line, as it starts a command container (fallocate made to refuse in this
process: ramfs reports no free space, so `up` refuses to use it at all)."""

from __future__ import annotations

import errno
import os

import pytest

from helpers import netlab, write_topology
from private_mounts import PrivateMounts

pytestmark = pytest.mark.root

GROWS = "a command container's log cannot start over at 10 MiB there and grows without bound"


def test_doctor_warns_of_a_state_folder_on_a_file_system_that_cannot_cut_a_log(tmp_path):
    mnt = tmp_path / "ram"
    mnt.mkdir(mode=0o700)
    ns = PrivateMounts(str(tmp_path))  # the ramfs, and the doctor that meets it, in a mount namespace of the test's
    try:
        ns.run("mount", "-t", "ramfs", "-o", "mode=0700", "netlab-test-ramfs", str(mnt))
        state = mnt / "state"
        os.mkdir(ns.seen(str(state)), mode=0o700)
        out = ns.netlab("doctor", check=False, env={"NETLAB_STATE_DIR": str(state)}).stdout  # exit 3: ramfs: 0 free
        assert (f"warn  host container logs: ramfs ({state}) cannot cut a log's oldest part (no "
                "FALLOC_FL_COLLAPSE_RANGE nor PUNCH_HOLE): a command container's log grows without bound; fix: point "
                "NETLAB_STATE_DIR to a folder on tmpfs, ext4 or XFS\n") in out, out
        assert os.listdir(ns.seen(str(state))) == []  # the file it tried is gone
        shm = netlab("doctor", check=False, env={"NETLAB_STATE_DIR": "/dev/shm"}).stdout  # a tmpfs
        assert ("ok    host container logs: tmpfs (/dev/shm): a log past 10 MiB starts over, its oldest part punched "
                "into a hole (FALLOC_FL_PUNCH_HOLE)\n") in shm, shm
    finally:
        ns.close()  # the ramfs goes with the namespace


def test_up_says_once_that_a_command_containers_log_grows_without_bound(labs, tmp_path, monkeypatch):
    from netlab.api import Lab
    from netlab.workload import containers, echo_log

    def refused(fd: int, mode: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(echo_log, "fallocate", refused)
    monkeypatch.setattr(containers, "_UNCUT_SAID", set())
    lab = labs.name("lfc")

    def topology(word: str) -> str:
        return write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: w\n    node: n1\n"
                              f"    containers:\n      - {{name: main, command: [sh, -c, 'echo {word}; exec sleep 600']}}"
                              "\n      - {name: echo}\n")

    first = Lab.up(topology("one")).last_up
    assert first is not None and first.ok
    folder = containers.log_dir(lab)
    said = [w for w in first.warnings if GROWS in w]
    assert len(said) == 1 and said[0].startswith(f"logs: {folder} is on "), first.warnings
    assert "which can neither collapse nor punch a file's oldest blocks" in said[0]
    assert sorted(os.listdir(folder)) == ["w.echo.log", "w.main.log"]  # nothing else left there
    again = Lab.up(topology("two")).last_up  # the container started again (a new command): said once only
    assert again is not None and again.ok and not [w for w in again.warnings if GROWS in w], again.warnings
    monkeypatch.undo()  # the CLI, fallocate as it is: this machine's state folder cuts (ext4, tmpfs), nothing said
    proc = netlab("up", "-t", topology("three"))
    assert GROWS not in proc.stdout + proc.stderr
    assert netlab("logs", "--lab", lab, "w", "-c", "main").stdout == "three\n"
