"""A node's Flannel file that `up` changes because the topology changed is not "edited" (QA qf).

After a backend switch (vxlan -> host-gw) or an underlay MTU change, FLANNEL_MTU of every node's subnet.env
changes: up said "rewrote ...: it had been edited", though nobody touched the file, and status only "is
different". Both now compare the file with what up wrote last (the state's record) and say the same: the last
topology's (with what changes), or edited.
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

TOPO = {"name": "flmtu", "network": {"mode": "vxlan", "underlay": {"mtu": 1500}},
        "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": [{"name": "a", "node": "n1"}]}


def _lab(**network):
    topo = yaml.safe_load(yaml.safe_dump(TOPO))
    topo["network"].update(network)
    return resolve(Topology.model_validate(topo))


def _up(lab, state):
    state_dir.lab_dir(lab.name)
    return flannel_files.sync(lab, state).actions


def test_a_backend_switch_is_the_last_topologys_file_not_an_edited_one():
    state = LabState(lab="flmtu")
    assert _up(_lab(), state) == []
    new = _lab(mode="host-gw")
    kept = flannel_files.where("flmtu", "n1", flannel.SUBNET_ENV)
    assert flannel_files.drift(new, state) == [
        f"flannel: {flannel.SUBNET_ENV} of node n{i} ({flannel_files.where('flmtu', f'n{i}', flannel.SUBNET_ENV)}) "
        "is the last topology's (FLANNEL_MTU 1450, now 1500); up writes it again" for i in (1, 2)]
    actions = _up(new, state)
    assert actions[0] == (f"rewrote {flannel.SUBNET_ENV} of node n1 ({kept}): it was the last topology's "
                          "(FLANNEL_MTU 1450, now 1500)")
    assert len(actions) == 2 and not any("edited" in a for a in actions)
    assert flannel_files.drift(new, state) == [] and _up(new, state) == []


def test_an_underlay_mtu_change_too_and_an_edit_is_still_an_edit():
    state = LabState(lab="flmtu")
    _up(_lab(), state)
    kept = flannel_files.where("flmtu", "n2", flannel.SUBNET_ENV)
    with open(kept, "a", encoding="utf-8") as fh:
        fh.write("# mine\n")
    new = _lab(underlay={"mtu": 1400})
    lines = flannel_files.drift(new, state)
    assert lines[0].endswith("is the last topology's (FLANNEL_MTU 1450, now 1350); up writes it again")
    assert lines[1] == (f"flannel: {flannel.SUBNET_ENV} of node n2 ({kept}) is edited (not as up last wrote it); "
                        "up writes it again")
    actions = _up(new, state)
    assert actions[0].endswith(": it was the last topology's (FLANNEL_MTU 1450, now 1350)")
    assert actions[1] == (f"rewrote {flannel.SUBNET_ENV} of node n2 ({kept}): it had been edited (not as up last "
                          "wrote it)")


def test_a_lab_without_a_record_says_different_and_a_missing_file_missing():
    lab = _lab()
    _up(lab, None)
    os.unlink(flannel_files.where("flmtu", "n1", flannel.CNI_CONFLIST))
    lines = flannel_files.drift(_lab(mode="host-gw"), LabState(lab="flmtu"))
    assert [line.split(") ", 1)[1] for line in lines] == [
        "is different; up writes it again", "is missing; up writes it again", "is different; up writes it again"]
    assert _up(_lab(mode="host-gw"), LabState(lab="flmtu"))[0].endswith(": it differed")


def test_the_record_up_keeps_passes_the_state_files_schema(state_root):
    # A state is checked whole against state_schema when its sum no longer matches (a newer netlab reading it):
    # a record the schema lacks made every Flannel lab's state "corrupt" after an upgrade.
    from netlab.realize.state_schema import check_state

    lab = _lab()
    state = LabState(lab=lab.name, topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                     netns={}, phase="up")
    _up(lab, state)
    assert state.extra[flannel_files.RECORD]
    state.save()
    raw = (state_root / lab.name / "state.json").read_bytes()
    data, _ = check_state(raw, lab.name)
    assert data["extra"][flannel_files.RECORD] == state.extra[flannel_files.RECORD]
