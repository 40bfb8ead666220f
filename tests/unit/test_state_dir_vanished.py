"""The state folder removed by another netlab command while this one reads it (QA q29 defect 4).

A command that made the state folder and leaves it empty removes it as its lock is released (drop_root_if_made).
`netlab list` (known_labs: root_there, then os.listdir) and stateless_labs() crashed with a FileNotFoundError
traceback when that happened between the look and the read; root_there's lexists and then lstat had the same window.
A folder that vanished is no lab. And drop_root_if_made removed the folder by its path alone: in a long-lived process
(the Python API, up --watch) a folder the user removed and made again as their own, empty, went too. The races are
injected here (the fake removes the folder just before the call it wraps): no timing.
"""

from __future__ import annotations

import os

import pytest
from cli_inprocess import run_cli

from netlab.realize import lab_list, state_dir


@pytest.fixture
def root(tmp_path, monkeypatch):
    path = tmp_path / "state"
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path))
    monkeypatch.setenv("NETLAB_STATE_DIR", str(path))
    monkeypatch.setattr(state_dir, "_checked", {})
    monkeypatch.setattr(state_dir, "_made_root", [])
    return path


def vanish_before(monkeypatch, module, name: str, root) -> None:
    """``module.name`` removes the (empty) state folder when first called on it, then does its work."""
    real = getattr(module, name)

    def call(path, *args, **kwargs):
        if os.fspath(path) == str(root) and os.path.isdir(root):
            os.rmdir(root)  # another command's drop_root_if_made, just now
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, name, call)


def test_a_state_folder_removed_before_list_reads_it_is_no_lab(root, monkeypatch):
    root.mkdir(mode=0o700)
    vanish_before(monkeypatch, os, "listdir", root)
    assert lab_list.known_labs() == []
    root.mkdir(mode=0o700)
    assert lab_list.stateless_labs() == []


def test_a_state_folder_removed_between_lexists_and_lstat_is_not_there(root, monkeypatch):
    root.mkdir(mode=0o700)
    real = os.path.lexists

    def lexists_then_gone(path):
        there = real(path)
        if os.fspath(path) == str(root) and there:
            os.rmdir(root)
        return there

    monkeypatch.setattr(os.path, "lexists", lexists_then_gone)
    assert state_dir.root_there() is False
    root.mkdir(mode=0o700)
    assert lab_list.known_labs() == []
    root.mkdir(mode=0o700)
    assert state_dir.read_state_file("srx") is None  # lab_dir(create=False): a folder gone is no folder


def test_netlab_list_with_the_folder_removed_meanwhile_is_no_traceback(root, monkeypatch):
    root.mkdir(mode=0o700)
    vanish_before(monkeypatch, os, "listdir", root)
    got = run_cli("list")
    assert got.returncode == 0 and "Traceback" not in got.stderr, got
    assert not os.path.lexists(root)


def test_the_folder_this_process_made_goes_when_empty(root):
    state_dir.state_root()
    assert root.is_dir()
    state_dir.drop_root_if_made()
    assert not os.path.lexists(root)


def test_a_folder_made_again_by_someone_else_is_kept(root, tmp_path):
    state_dir.state_root()  # made by this process (a Lab.up() of a long-lived one)
    os.rename(root, tmp_path / "aside")  # the user removes it (kept aside: its inode is not reused) ...
    root.mkdir(mode=0o700)  # ... and makes their own, empty
    state_dir.drop_root_if_made()
    assert root.is_dir()
    state_dir.drop_root_if_made()  # forgotten: never asked again
    assert root.is_dir()


def test_a_folder_removed_just_before_the_drop_is_no_error(root, monkeypatch):
    state_dir.state_root()
    vanish_before(monkeypatch, os, "lstat", root)
    state_dir.drop_root_if_made()
    assert not os.path.lexists(root) and state_dir._made_root == []


def test_a_lab_folder_removed_between_lexists_and_lstat_is_no_lab_folder(root, monkeypatch):
    folder = state_dir.lab_dir("srx")  # made and marked, as a lock makes it
    monkeypatch.setattr(state_dir, "_checked", {})  # read by another process than the one that made it
    real = os.path.lexists

    def lexists_then_gone(path):
        there = real(path)
        if os.fspath(path) == folder and there:  # another command's down: the lab's folder, then the state folder
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)
            os.rmdir(root)
        return there

    monkeypatch.setattr(os.path, "lexists", lexists_then_gone)
    assert state_dir.read_state_file("srx") is None
