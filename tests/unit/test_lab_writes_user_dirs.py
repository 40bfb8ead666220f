"""``up`` writes nothing through a lab's ``logs/``, ``nodes/`` or ``cni/`` that is a user's: a symlink to a folder
of theirs, or a bind mount of one (QA q47 1, what its fix left: only ``dns/`` was guarded).

Before, a container's start moved its log to the previous one and opened its new log through the link or the
mount, the nodes' Flannel files were written there, and host-local kept its leases there. Now every write below
the lab's folder opens each folder on the way fd-relative (O_NOFOLLOW), on the lab folder's own mount
(realize/lab_writes.py): the containers run with their output going to /dev/null, said in one line; the Flannel
files are not written, said in one line; an ``up`` of a CNI lab is refused before any change (exit 3). The real
bind mount: tests/integration/test_lab_writes_user_dirs_live.py.
"""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest
import yaml

from netlab.errors import EnvironmentNotReady
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import lab_folder, lab_writes, state_dir
from netlab.services import flannel_files
from netlab.workload import containers

LAB = "uwd"


def _files(folder) -> dict[str, bytes]:
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


@pytest.fixture
def theirs(state_root, tmp_path):
    """A user's folder, with a log of the lab's names in it, linked at the lab's ``logs/``."""
    state_dir.lab_dir(LAB)
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "b.main.log").write_text("USER current\n")
    (folder / "b.main.previous.log").write_text("USER previous\n")
    (folder / "other.txt").write_text("USER\n")
    return folder


def _on_another_mount(monkeypatch, name: str) -> None:
    """``name`` (a folder's last name) on a mount of its own: its mount id differs, its st_dev is the same."""
    real = lab_folder.mount_id
    monkeypatch.setattr(lab_folder, "mount_id", lambda fd: -7 if os.readlink(f"/proc/self/fd/{fd}").endswith(
        "/" + name) else real(fd))


def test_a_containers_start_moves_and_writes_nothing_in_a_symlinked_logs_folder(state_root, theirs):
    os.symlink(theirs, state_root / LAB / "logs")
    before = _files(theirs)
    log = containers.log_path(LAB, "b", "main")
    assert containers.new_run(LAB, "b", "main") is None  # nothing blocks: its output goes to /dev/null
    assert containers.log_blocked(log) is None
    fd = containers.open_log(log)
    try:
        os.write(fd, b"container output\n")
        assert stat.S_ISCHR(os.fstat(fd).st_mode)  # /dev/null
    finally:
        os.close(fd)
    containers.note_start_error(log, "no such command")
    assert _files(theirs) == before, "written through the symlink"
    assert containers.logs_refused(LAB) == (f"logs: {state_root / LAB / 'logs'}: {lab_folder.A_SYMLINK}; the "
                                            "containers' logs are not written there (their output goes to /dev/null)")


def test_a_logs_folder_on_another_mount_is_written_in_neither(state_root, theirs, monkeypatch):
    logs = state_root / LAB / "logs"
    logs.mkdir()
    for name in ("b.main.log", "b.main.previous.log"):
        (logs / name).write_text(f"USER {name}\n")
    before = _files(logs)
    _on_another_mount(monkeypatch, "logs")
    assert containers.new_run(LAB, "b", "main") is None
    fd = containers.open_log(containers.log_path(LAB, "b", "main"))
    os.close(fd)
    assert _files(logs) == before, "the log moved or written on the user's mount"
    assert lab_folder.ON_A_MOUNT in (containers.logs_refused(LAB) or "")


def test_netlabs_own_logs_folder_is_made_and_written_fd_relative(state_root):
    state_dir.lab_dir(LAB)
    assert containers.logs_refused(LAB) is None
    log = containers.log_path(LAB, "b", "main")
    fd = containers.open_log(log)
    os.write(fd, b"one\n")
    os.close(fd)
    assert containers.new_run(LAB, "b", "main") is None
    assert open(containers.previous_log_path(LAB, "b", "main")).read() == "one\n" and not os.path.exists(log)
    assert stat.S_IMODE(os.stat(state_root / LAB / "logs").st_mode) == 0o700


TOPO = "name: uwd\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"


def _lab():
    return resolve(Topology.model_validate(yaml.safe_load(TOPO)))


@pytest.mark.parametrize("at", ["nodes", "nodes/n1/run"])
def test_the_flannel_files_are_not_written_through_a_symlinked_folder(state_root, theirs, at):
    lab = _lab()
    where = state_root / LAB / at
    where.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(theirs, where)
    before = _files(theirs)
    done = flannel_files.sync(lab)
    assert _files(theirs) == before, "the Flannel files written through the symlink"
    assert done.problems == [f"flannel: {where}: {lab_folder.A_SYMLINK}; node n1's Flannel files (subnet.env, the "
                             "CNI config) are not written there (left alone)"]
    assert flannel_files.drift(lab) == []  # the user's: up leaves it, and says so
    assert flannel_files.remove(LAB, "n1") == [] and _files(theirs) == before


def test_the_flannel_files_are_written_in_netlabs_own_folders(state_root):
    lab = _lab()
    state_dir.lab_dir(LAB)
    assert flannel_files.sync(lab).problems == [] and flannel_files.drift(lab) == []
    env = state_root / LAB / "nodes" / "n1" / "run" / "flannel" / "subnet.env"
    assert "FLANNEL_SUBNET" in env.read_text() and stat.S_IMODE(env.stat().st_mode) == 0o644


@pytest.mark.parametrize("how", ["symlinked cni", "symlinked lease folder", "a lease a symlink", "cni on a mount"])
def test_an_up_of_a_cni_lab_is_refused_before_any_change_with_a_users_folder_in_cni(state_root, theirs, how,
                                                                                    monkeypatch):
    from netlab.cni import lifecycle

    cni = state_root / LAB / "cni"
    if how == "symlinked cni":
        os.symlink(theirs, cni)
        bad = cni
    else:
        (cni / "networks").mkdir(parents=True)
        if how == "symlinked lease folder":
            bad = cni / "networks" / "n1"
            os.symlink(theirs, bad)
        elif how == "a lease a symlink":
            (cni / "networks" / "n1" / "net").mkdir(parents=True)
            bad = cni / "networks" / "n1" / "net" / "last_reserved_ip.0"
            os.symlink(theirs / "other.txt", bad)
        else:
            bad = cni
            _on_another_mount(monkeypatch, "cni")
    before = _files(theirs)
    why = lab_folder.A_SYMLINK if how != "cni on a mount" else lab_folder.ON_A_MOUNT
    with pytest.raises(EnvironmentNotReady) as err:
        lifecycle.preflight(SimpleNamespace(name=LAB, cni="conflist"))
    assert str(err.value) == (f"lab {LAB}: {bad}: {why}; up writes nothing through it (the CNI plugins keep their "
                              "leases and results below the lab's cni/): move it away, then run up again")
    assert err.value.exit_code == 3 and _files(theirs) == before


def test_a_cni_folder_of_netlabs_is_no_problem(state_root):
    (state_root / LAB / "cni" / "networks" / "n1").mkdir(parents=True)
    assert lab_writes.tree_problem(LAB, ["cni"]) is None
    assert lab_writes.tree_problem("nolab", ["cni"]) is None
