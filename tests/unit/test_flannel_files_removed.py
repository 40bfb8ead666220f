"""A node the running lab no longer has: ``up`` removes its Flannel files (services/flannel_files.py remove), as
its namespace goes (services/lifecycle.py stop), exactly those and the folders they leave empty."""

from __future__ import annotations

import os

import pytest
import yaml

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import state as state_mod, state_dir
from netlab.services import flannel_files, lifecycle

TOPO = """
name: flrm
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: a, node: n1}
"""


def written():
    lab = resolve(Topology.model_validate(yaml.safe_load(TOPO)))
    state_dir.lab_dir(lab.name)
    flannel_files.sync(lab)
    return lab


def tree(lab_name: str) -> list[str]:
    root = os.path.join(state_dir.lab_dir(lab_name, create=False), "nodes")
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in dirs + files)


def test_a_removed_nodes_files_and_folders_go_and_nothing_of_the_others():
    lab = written()
    n1 = [p for p in tree(lab.name) if p.startswith("n1")]
    assert "n2/run/flannel/subnet.env" in tree(lab.name)
    removed = flannel_files.remove(lab.name, "n2")
    assert len(removed) == 2 + 6  # two files; run/flannel, run, etc/cni/net.d, etc/cni, etc and n2
    assert tree(lab.name) == n1
    assert flannel_files.remove(lab.name, "n2") == []  # gone already: nothing to do


def test_a_file_someone_put_beside_them_keeps_its_folders():
    lab = written()
    extra = os.path.join(flannel_files.node_root(lab.name, "n2"), "run", "flannel", "notes")
    with open(extra, "w") as fh:
        fh.write("someone's\n")
    flannel_files.remove(lab.name, "n2")
    assert [p for p in tree(lab.name) if p.startswith("n2")] == ["n2", "n2/run", "n2/run/flannel",
                                                                 "n2/run/flannel/notes"]


@pytest.mark.parametrize("name", ["", ".", "..", "../flrm", "a/b"])
def test_a_name_that_could_leave_the_labs_folder_is_refused(name):
    lab = written()
    with pytest.raises(ValueError):
        flannel_files.remove(lab.name, name)
    assert "n1/run/flannel/subnet.env" in tree(lab.name) and "n2/run/flannel/subnet.env" in tree(lab.name)


def test_the_services_feature_removes_them_as_the_nodes_namespace_goes():
    lab = written()
    state = state_mod.LabState(lab=lab.name)
    lifecycle.stop(state, ["flrm-n2", "flrm-a", "other-n1"])
    assert [p for p in tree(lab.name) if p.startswith("n2")] == []
    assert "n1/run/flannel/subnet.env" in tree(lab.name)  # another lab's namespace named nothing of this lab
