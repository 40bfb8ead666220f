"""up says it wrote a node's Flannel file again that was missing (QA fl59 7).

`rm <state>/<lab>/nodes/n2/etc/cni/net.d/10-flannel.conflist`: status said "is missing; up writes it again", up
wrote it but printed "nothing to change" (JSON changed false, fixed []), and with one file edited and one deleted,
"1 file written": a missing file was written without a word. It is said as any rewrite is, once up has written it
before (the state's record); the lab's first up, which writes every file, still says nothing of them.
"""

from __future__ import annotations

import os

import yaml

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.plan import flannel
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.services import flannel_files

TOPO = {"name": "flgone", "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": [{"name": "a", "node": "n1"}]}


def _up(lab, state):
    state_dir.lab_dir(lab.name)
    return flannel_files.sync(lab, state).actions


def test_a_deleted_file_is_written_again_and_said():
    lab = resolve(Topology.model_validate(yaml.safe_load(yaml.safe_dump(TOPO))))
    state = LabState(lab="flgone")
    assert _up(lab, state) == []  # the first up: every file written, none a repair
    conflist = flannel_files.where("flgone", "n2", flannel.CNI_CONFLIST)
    env = flannel_files.where("flgone", "n1", flannel.SUBNET_ENV)
    os.unlink(conflist)
    with open(env, "a", encoding="utf-8") as fh:
        fh.write("# mine\n")
    assert [line.split(") ", 1)[1] for line in flannel_files.drift(lab, state)] == [
        "is edited (not as up last wrote it); up writes it again", "is missing; up writes it again"]
    assert _up(lab, state) == [
        f"rewrote {flannel.SUBNET_ENV} of node n1 ({env}): it had been edited (not as up last wrote it)",
        f"rewrote {flannel.CNI_CONFLIST} of node n2 ({conflist}): it was missing"]
    assert os.path.exists(conflist) and flannel_files.drift(lab, state) == [] and _up(lab, state) == []
