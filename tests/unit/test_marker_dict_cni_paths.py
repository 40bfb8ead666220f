"""A dict topology's relative ``network.cni.conflist`` and ``binDir`` (QA): a YAML file's are taken from its own
folder; the pytest marker's dict (and netlab_factory's) took them from wherever pytest ran, so a test passed from
its folder and failed from the repository's root. The plugin now takes them from the test file's folder, as it
looks for a topology file there first; ``Lab.up(dict)`` and ``netlab.api.load(dict)`` in a program, which has no
file, take them from the current directory, and their error says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.api import load
from netlab.errors import TopologyError
from netlab.pytest_topology import resolve_path


def _plugin_folder(tmp_path: Path) -> Path:
    tests = tmp_path / "tests"
    (tests / "bin").mkdir(parents=True)
    (tests / "bin" / "chain").write_text("#!/bin/sh\nexit 1\n")
    (tests / "bin" / "chain").chmod(0o755)
    (tests / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net",
                                                   "plugins": [{"type": "chain"}]}))
    return tests


def _topology(conflist: str = "./net.conflist", bin_dir: str = "bin") -> dict:
    return {"name": "mdcp", "network": {"cni": {"conflist": conflist, "binDir": bin_dir}},
            "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]}


def test_the_markers_dict_takes_its_cni_paths_from_the_test_files_folder(tmp_path, monkeypatch):
    tests = _plugin_folder(tmp_path)
    monkeypatch.chdir(tmp_path)  # pytest run from the repository's root, not the tests' folder
    topology = _topology()
    given = json.dumps(topology)
    rooted = resolve_path(tests / "test_plugin.py", tmp_path, topology)
    assert json.dumps(topology) == given  # the test's own dict is left as it wrote it
    cni = load(rooted, running=False).lab.topo.network.cni
    assert (cni.conflist, cni.bin_dir) == (str(tests / "net.conflist"), str(tests / "bin"))
    absolute = _topology(str(tests / "net.conflist"), str(tests / "bin"))
    assert resolve_path(tests / "test_plugin.py", tmp_path, absolute) == absolute  # absolute paths: as written
    builtin = {"name": "mdcp", "nodes": [{"name": "n1"}]}
    assert resolve_path(tests / "test_plugin.py", tmp_path, builtin) is builtin


def test_a_programs_dict_takes_them_from_the_current_directory_and_says_so(tmp_path, monkeypatch):
    tests = _plugin_folder(tmp_path)
    monkeypatch.chdir(tests)
    cni = load(_topology(), running=False).lab.topo.network.cni
    assert cni.conflist == str(tests / "net.conflist")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TopologyError) as exc:
        load(_topology(), running=False)
    assert str(exc.value).splitlines() == [
        f"<dict>: network.cni.binDir: {tmp_path}/bin: no such directory (a dict's relative path is taken from the "
        f"current directory, {tmp_path}; give an absolute one)",
        f"<dict>: network.cni.conflist: {tmp_path}/net.conflist: no such file (a dict's relative path is taken from "
        f"the current directory, {tmp_path}; give an absolute one)"]
