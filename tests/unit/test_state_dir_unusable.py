"""A NETLAB_STATE_DIR no command can use, and commands that change nothing (QA q28, defects 2, 3 and 7); the real
CLI with such values: tests/integration/test_state_dir_unusable_live.py.

A symlink loop as the state folder got past the symlink check (`os.path.isdir` of a loop is False: "no folder
there"), and `list`, `status`, `get` and `up` then judged every lab whose namespaces are tagged: each "corrupt" (its
state file "a symlink"), with `down --force` as the way out, other users' labs included. A name too long
(ENAMETOOLONG) or a loop above it (ELOOP) was a traceback in `doctor`. `down` with nothing to do, and a refused
`up`, left the state folder made for the lab's lock behind (a relative one in the working directory).
"""

from __future__ import annotations

import os

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, up

from netlab.doctor_lines import FAIL, WARN
from netlab.doctor_host import check_state_dir
from netlab.errors import EnvironmentNotReady
from netlab.kernel import caps
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.realize import lab_list, lab_folder, state as state_mod, state_dir, tags
from netlab.realize.lab_lock import LabLock

lab = pytest.fixture(make_lab, name="lab")
USE_ANOTHER = ("point NETLAB_STATE_DIR at a directory of root's own (netlab makes it, mode 0700, if it is not "
               "there)")
WORDS = [("list",), ("status", "--lab", "fk"), ("get", "pods", "--lab", "fk"), ("get", "pods"), ("up", "--lab", "fk"),
         ("down", "--lab", "fk"), ("graph", "--lab", "fk")]


def loop(tmp_path) -> str:
    os.symlink(tmp_path / "l2", tmp_path / "l1")
    os.symlink(tmp_path / "l1", tmp_path / "l2")
    return str(tmp_path / "l1")


def use(monkeypatch, path: str) -> None:
    monkeypatch.setattr(state_dir, "STATE_ROOT", path)
    monkeypatch.setenv("NETLAB_STATE_DIR", path)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(caps, "missing", lambda names=None: [])


def tagged_machine(lab, monkeypatch) -> None:
    """A lab up (fake kernel), its namespaces tagged as a real machine's are: what `list` and the others judged."""
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    spaces = {name: tags.state_tag(st.lab, st.run_id, st.extra) for name in st.netns}
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(nsmod, "read_tag", lambda name: spaces.get(name))


@pytest.mark.parametrize("words", WORDS, ids=" ".join)
def test_a_symlink_loop_as_the_state_folder_is_refused_up_front_and_no_lab_is_called_corrupt(words, lab, tmp_path,
                                                                                              monkeypatch):
    tagged_machine(lab, monkeypatch)
    path = loop(tmp_path)
    use(monkeypatch, path)
    got = run_cli(*words)
    assert (got.returncode, got.stderr, got.stdout) == (
        3, f"netlab: {path} is a symlink; refusing to use it ({USE_ANOTHER} and retry)\n", ""), got
    assert os.readlink(path) == str(tmp_path / "l2") and sorted(os.listdir(tmp_path)) == ["l1", "l2", "state", "t.yaml"]


@pytest.mark.parametrize("words", WORDS, ids=" ".join)
def test_a_state_folder_name_too_long_is_one_line(words, tmp_path, monkeypatch):
    path = str(tmp_path / ("c" * 256))
    use(monkeypatch, path)
    got = run_cli(*words)
    assert (got.returncode, got.stderr) == (3, f"netlab: cannot use {path}: File name too long; {USE_ANOTHER}\n"), got


def test_the_shared_check_refuses_before_any_lab_is_read(tmp_path, monkeypatch):
    use(monkeypatch, loop(tmp_path))
    asks = (state_dir.root_there, lab_list.known_labs, lab_list.stateless_labs, lambda: state_mod.load_state("fk"))
    for ask in asks:
        with pytest.raises(EnvironmentNotReady, match="is a symlink; refusing to use it"):
            ask()


@pytest.mark.parametrize("below", ["loop", "long", "deep"])
def test_the_doctor_says_a_state_folder_it_cannot_look_at_in_its_own_words(below, tmp_path):
    if below == "loop":
        path = os.path.join(loop(tmp_path), "x")
        why = "Too many levels of symbolic links"
    elif below == "long":
        path = str(tmp_path / ("c" * 256))
        why = "File name too long"
    else:
        path = str(tmp_path / "/".join(["d"] * 2100))  # over PATH_MAX
        why = "File name too long"
    perm, space = check_state_dir(path, True)
    assert (perm.status, perm.detail, perm.fix, perm.needed) == (FAIL, f"{path}: {why}; netlab cannot use it",
                                                                 USE_ANOTHER, True)
    assert space.status == WARN


def test_down_with_nothing_to_do_leaves_no_state_folder(tmp_path, monkeypatch):
    path = tmp_path / "fresh"
    use(monkeypatch, str(path))
    got = run_cli("down", "--lab", "fk")
    assert (got.returncode, got.stdout) == (0, "lab fk is not up; nothing to do\n"), got
    assert not os.path.lexists(path)


def test_a_state_folder_made_for_a_lock_alone_goes_and_a_lab_made_after_still_gets_one(lab, tmp_path, monkeypatch):
    path = tmp_path / "state"
    with LabLock("other"):  # another lab's lock in it: the folder stays
        assert path.is_dir()
        with LabLock("fk"):
            pass
        assert os.listdir(path) == ["other"]
    assert not os.path.lexists(path)
    made = lab_folder.make

    def another_drops_it(where, name):  # as another command drops the folder it made, between ours' check and make
        os.rmdir(path)
        monkeypatch.setattr(lab_folder, "make", made)
        return made(where, name)

    state_dir.state_root()
    monkeypatch.setattr(lab_folder, "make", another_drops_it)
    up(lab, FakeKernel())
    assert state_mod.load_state("fk") is not None
    with LabLock("x1"):
        pass
    assert path.is_dir() and sorted(os.listdir(path)) == ["fk"]  # a lab in it: never dropped
