"""A state folder that names folders netlab did not make (QA qs, defects 2 and 3; as root: test_state_folder_decoy).

NETLAB_STATE_DIR=/var/lib offered ``dpkg`` as a lost lab, ``down`` wrote a lock into it and ``down --force``
emptied it; ``up`` of a lab named as a folder there took it. A lab's folder is netlab's only when it carries
netlab's mark (realize/lab_folder.py); ``down`` removes only the names netlab writes. And the folders above the
state folder are checked as sudo checks its own: a parent another user owns, or a symlink, is refused.
"""

from __future__ import annotations

import os

import pytest
from cli_inprocess import run_cli

from netlab.errors import EnvironmentNotReady
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_list, lab_folder, lab_lock, lab_removal, nft_written, state_dir
from netlab.realize.state import LabState, iter_states

NOBODY = 65534


def snapshot(root) -> dict:
    """Every path below ``root`` with its type, mode, owner and content: byte for byte."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            body = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_ino, body)
    return out


@pytest.fixture
def decoy(state_root):
    """The state folder shaped like /var/lib and /etc: folders of other programs', as root makes them."""
    (state_root / "dpkg" / "info").mkdir(parents=True)
    (state_root / "dpkg" / "status").write_text("s\n")
    (state_root / "dpkg" / "info" / "a.list").write_text("x\n")
    (state_root / "dpkg" / "lock").write_text("l\n")
    (state_root / "ssl" / "certs").mkdir(parents=True)
    (state_root / "ssl" / "certs" / "a.pem").write_text("pem\n")
    (state_root / "ssl" / "state.json").write_text("{}\n")  # a state.json of someone else's
    (state_root / "apt").mkdir()
    (state_root / "apt" / "lock").write_text("")  # nothing but a lock: not netlab's either (mode 0755)
    return state_root


def test_list_shows_no_folder_netlab_did_not_make(decoy):
    before = snapshot(decoy)
    assert lab_list.known_labs() == [] and lab_list.stateless_labs() == []
    assert list(iter_states()) == []
    got = run_cli("list")
    assert got.returncode == 0 and "dpkg" not in got.stdout + got.stderr and "ssl" not in got.stdout, got
    assert snapshot(decoy) == before


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("lab", ["dpkg", "ssl", "apt"])
def test_down_of_a_folder_netlab_did_not_make_writes_and_removes_nothing(decoy, lab, force):
    before = snapshot(decoy)
    with pytest.raises(EnvironmentNotReady) as info:
        teardown.down(lab, FakeKernel(), force=force)
    assert info.value.exit_code == 3 and f"{decoy / lab} is not a lab folder of netlab's" in str(info.value)
    assert snapshot(decoy) == before  # no lock written, nothing removed
    got = run_cli("down", "--lab", lab, *(["--force"] if force else []))
    assert got.returncode == 3 and got.stderr.count("\n") == 1 and "not a lab folder of netlab's" in got.stderr, got
    assert snapshot(decoy) == before


def test_up_refuses_a_folder_there_that_netlab_did_not_make(state_root):
    (state_root / "fk" / "sub").mkdir(parents=True, mode=0o700)
    (state_root / "fk" / "notes.txt").write_text("mine\n")
    (state_root / "fk" / "sub" / "keep").write_text("keep\n")
    before = snapshot(state_root)
    with pytest.raises(EnvironmentNotReady):
        LabState(lab="fk").save()  # every write of a lab's makes or checks its folder first
    with pytest.raises(EnvironmentNotReady):
        with lab_lock.LabLock("fk", "netlab up"):
            pass
    got = run_cli("up", "--lab", "fk")
    assert got.returncode == 3 and got.stderr.count("\n") == 1 and "is not a lab folder of netlab's" in got.stderr
    assert snapshot(state_root) == before


def test_a_lab_folder_is_made_with_its_mark_at_once_and_one_of_an_earlier_release_still_counts(state_root):
    LabState(lab="fk").save()
    assert sorted(os.listdir(state_root / "fk")) == ["netlab-lab", "state.json", "state.sum"]
    assert [n for n in os.listdir(state_root) if n.startswith(".")] == []  # the temporary folder renamed away
    assert not lab_folder.make(str(state_root / "fk"), "fk")  # there already: never replaced
    old = state_root / "old"
    old.mkdir(mode=0o700)  # as the release before the mark made it: 0700, its lock in it, in its words
    (old / "lock").write_bytes(b"pid 12 (netlab up)\n")
    (old / "echo.sock").write_bytes(b"")
    assert lab_folder.not_ours(str(old)) is None and lab_list.stateless_labs() == ["old"]
    teardown.down("old", FakeKernel(), force=True)
    assert not old.exists()


def test_down_force_removes_netlabs_names_only_and_says_what_it_left(state_root):
    LabState(lab="fk").save()
    folder = state_root / "fk"
    for name in ("echo.sock", "echo.log", "state.sum", "state.json.tmp.77", "mine.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "logs").mkdir()
    (folder / "logs" / "a.main.log").write_bytes(b"log")
    (folder / "keep").mkdir()
    (folder / "keep" / "f").write_bytes(b"f")
    (folder / "state.json").write_text("{not json")  # corrupt: --force
    done = teardown.down("fk", FakeKernel(), force=True)
    assert sorted(os.listdir(folder)) == ["keep", "mine.txt"]
    assert (folder / "keep" / "f").read_bytes() == b"f"
    assert done.skipped == [f"{folder}/{name}: not netlab's; left alone (and the folder with it)"
                            for name in ("keep", "mine.txt")]
    assert lab_folder.not_ours(str(folder))  # unmarked: no lab's now, listed by nobody
    assert lab_list.stateless_labs() == [] and lab_list.known_labs() == []


def test_removal_never_follows_a_symlink_nor_leaves_the_folder(state_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("p")
    LabState(lab="fk").save()
    os.symlink(outside, state_root / "fk" / "logs")  # a known name, a symlink: the link goes, not what it names
    os.symlink(outside / "precious", state_root / "fk" / "echo.log")
    lab_list.forget("fk")
    assert (outside / "precious").read_text() == "p" and not (state_root / "fk").exists()


def test_a_foreign_folder_with_only_a_lock_is_not_dropped_by_a_refused_lock(state_root):
    (state_root / "apt").mkdir()
    (state_root / "apt" / "lock").write_text("")
    lab_lock._drop_if_unheld("apt")
    fd = os.open(state_root / "apt" / "lock", os.O_RDONLY)
    try:
        lab_lock._drop_if_only_lock("apt", fd)  # as its holder would
    finally:
        os.close(fd)
    assert os.listdir(state_root / "apt") == ["lock"]


def test_each_writer_of_a_lab_folder_is_in_the_known_list():
    from netlab.breaks.quiz import QUIZ_FILE
    from netlab.probe.early import KEEP_FILE
    from netlab.realize.state_sum import SUM_FILE
    from netlab.workload import crashloop

    names = {QUIZ_FILE, KEEP_FILE, SUM_FILE, crashloop.FILE, lab_lock.WatcherLock.FILE, state_dir.LOCK_FILE,
             state_dir.STATE_FILE, "echo.sock", "echo.log", nft_written.FILE}
    assert names <= lab_folder.OWN_FILES and lab_folder.TEMP_INFIX == state_dir.TEMP_INFIX
    assert lab_folder.own_name("state.json.tmp.123") and not lab_folder.own_name("state.json.tmp.x")
    assert not lab_folder.own_name("status") and not lab_folder.own_name("notes.txt")


def _root_at(monkeypatch, path) -> None:
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
    state_dir._checked.clear()
    getattr(state_dir, "_above_ok", set()).clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_state_folder_below_another_users_folder_is_refused_naming_it(tmp_path, monkeypatch):
    parent = tmp_path / "nob"
    parent.mkdir()
    os.chown(parent, NOBODY, NOBODY)
    _root_at(monkeypatch, parent / "state")
    with pytest.raises(EnvironmentNotReady) as info:
        state_dir.state_root()
    assert f"{parent}, a folder above it, is owned by uid {NOBODY}, not root" in str(info.value)
    assert not (parent / "state").exists()  # nothing made in it
    (parent / "state").mkdir(mode=0o700)
    with pytest.raises(EnvironmentNotReady, match="owned by uid 65534"):
        lab_list.known_labs()  # `list` too
    from netlab.doctor_host import check_state_dir

    perm, _ = check_state_dir(str(parent / "state"), True)
    assert perm.status == "FAIL" and f"{parent}, a folder above it, is owned by uid {NOBODY}" in perm.detail


def test_a_symlinked_or_writable_parent_is_refused_and_a_sticky_one_is_not(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    _root_at(monkeypatch, tmp_path / "link" / "state")
    with pytest.raises(EnvironmentNotReady, match=f"{tmp_path}/link, a folder above it, is a symlink"):
        state_dir.state_root()
    assert os.listdir(real) == []
    open_ = tmp_path / "open"
    open_.mkdir()
    os.chmod(open_, 0o777)
    _root_at(monkeypatch, open_ / "state")
    with pytest.raises(EnvironmentNotReady, match="is group- or world-writable and not sticky"):
        state_dir.state_root()
    os.chmod(open_, 0o1777)  # as /tmp: another user cannot swap what is root's in it
    _root_at(monkeypatch, open_ / "state")
    assert state_dir.state_root() == str(open_ / "state")
    assert lab_folder.ancestor_problem("/run/netlab") is None  # the default


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("args", [("list",), ("status", "--lab", "qx"), ("get", "pods", "--lab", "qx"),
                                  ("down", "--lab", "qx"), ("logs", "--lab", "qx", "p")])
def test_every_command_refuses_a_state_folder_below_another_users_folder_before_it_exists(tmp_path, monkeypatch,
                                                                                         args):
    """QA qr2 3: with the state folder not made yet, `list` said rc 0 and `status` "lab 'qx' is not up" (rc 2),
    where up, down and doctor refused it (rc 3)."""
    parent = tmp_path / "nob"
    parent.mkdir()
    os.chown(parent, NOBODY, NOBODY)
    _root_at(monkeypatch, parent / "sub" / "state")
    got = run_cli(*args)
    assert got.returncode == 3 and got.stderr.count("\n") == 1, got
    assert f"refusing state folder {parent}/sub/state: {parent}, a folder above it, is owned by uid {NOBODY}" \
        in got.stderr, got
    assert os.listdir(parent) == []  # nothing made in it


def test_a_state_folder_not_made_below_folders_not_made_is_no_lab_to_a_reader(tmp_path, monkeypatch):
    _root_at(monkeypatch, tmp_path / "none" / "state")
    assert lab_list.known_labs() == [] and not state_dir.root_there()
    assert not (tmp_path / "none").exists()


def test_a_lab_folder_keeps_its_lock_and_mark_while_something_of_netlabs_stays_in_it(state_root, monkeypatch):
    """An `up` that failed on a stale lab's namespaces forgot the folder while their UTS pins were still mounted in
    it (nothing on another mount is removed): the mark went with the rest, the folder stayed with `uts` alone, and
    `down --force` then refused it as not netlab's (a CI run left such a lab). The lock and the mark stay now."""
    path = state_dir.lab_dir("kept")
    for name in ("state.json", "lock"):
        (state_root / "kept" / name).write_text("x")
    (state_root / "kept" / "uts").mkdir()
    real = lab_removal._remove_at
    monkeypatch.setattr(lab_removal, "_remove_at",  # as for a tmpfs mounted there
                        lambda fd, name, *rest: None if name == "uts" else real(fd, name, *rest))
    assert lab_list.forget("kept") == []
    assert sorted(os.listdir(path)) == ["lock", lab_folder.MARK_FILE, "uts"]
    assert lab_folder.not_ours(path) is None
    monkeypatch.setattr(lab_removal, "_remove_at", real)
    assert lab_list.forget("kept") == [] and not os.path.exists(path)  # once the pins went: all of it
