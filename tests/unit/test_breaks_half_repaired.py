"""`netlab break` of a scenario a user repaired in part by hand since the last break, against the fake kernel.

The "broken already" check needed every step of the scenario in place: with one step put back by hand the whole
change was applied again, and a delete of what was gone failed with the kernel's error (vxlan-fdb-wrong-vtep:
the planned FDB entry deleted twice, ENOENT; forward-policy-drop: iptables -D of the FLANNEL-FWD jump that is
gone fails the restore), exit 4. Now only the missing steps are applied, and the result says what was added and
what was in place already.
"""

from __future__ import annotations

from dataclasses import replace

from test_breaks_again import _fake_lab

from netlab.breaks import catalogue, run as break_run
from netlab.breaks.changes import command_of
from netlab.kernel.base import Op, TableText
from netlab.plan.resources import Neigh, Vxlan


def _steps(lab, name: str) -> list[Op]:
    steps = break_run.steps_of(name, lab, catalogue.resolve_target(catalogue.scenario(name), lab, None))
    assert all(isinstance(s, Op) for s in steps)
    return steps  # type: ignore[return-value]


def test_fdb_wrong_vtep_with_the_wrong_entry_deleted_by_hand_adds_it_again_only(tmp_path, monkeypatch):
    lab, k = _fake_lab(tmp_path, monkeypatch, "default")
    del_planned, add_wrong = _steps(lab, "vxlan-fdb-wrong-vtep")
    break_run.break_lab(lab.name, "vxlan-fdb-wrong-vtep")
    k.apply([Op("del", add_wrong.res)])  # the user takes the wrong entry away; the planned one is still gone
    k.log.clear()
    again = break_run.break_lab(lab.name, "vxlan-fdb-wrong-vtep")  # was: ApplyFailed, ENOENT of the delete
    assert not again.already
    assert (again.done, again.in_place) == ([command_of(add_wrong)], [command_of(del_planned)])
    assert k.log == [add_wrong]
    assert again.to_json()["in_place"] == [command_of(del_planned)]
    assert break_run.break_lab(lab.name, "vxlan-fdb-wrong-vtep").already  # whole again


def test_forward_policy_drop_with_the_policy_put_back_sets_only_the_policy(tmp_path, monkeypatch):
    lab, k = _fake_lab(tmp_path, monkeypatch, "default")
    [op] = _steps(lab, "forward-policy-drop")
    assert isinstance(op.res, TableText)
    break_run.break_lab(lab.name, "forward-policy-drop")
    k.apply([Op("restore", replace(op.res, text="*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"))])  # `iptables -P`
    k.log.clear()
    again = break_run.break_lab(lab.name, "forward-policy-drop")  # was: ApplyFailed, the -D of a gone rule
    assert not again.already and [o.res.text for o in k.log] == ["*filter\n:FORWARD DROP [0:0]\nCOMMIT\n"]
    assert again.done == [f"ip netns exec {op.netns} iptables -t filter -P FORWARD DROP"]
    assert len(again.in_place) == 1 and again.in_place[0].startswith(f"ip netns exec {op.netns} iptables -t "
                                                                     "filter -D FORWARD ")
    assert break_run.break_lab(lab.name, "forward-policy-drop").already


def test_wrong_vni_with_a_neighbour_put_back_wrong_adds_only_what_is_missing(tmp_path, monkeypatch):
    """vxlan-wrong-vni makes flannel.1 again: a neighbour entry of it deleted by hand is added alone; the device
    made again by hand with the planned VNI is made again wrong, with all that hangs on it."""
    lab, k = _fake_lab(tmp_path, monkeypatch, "default")
    steps = _steps(lab, "vxlan-wrong-vni")
    neigh = next(s for s in steps if isinstance(s.res, Neigh))
    break_run.break_lab(lab.name, "vxlan-wrong-vni")
    k.apply([Op("del", neigh.res)])
    k.log.clear()
    again = break_run.break_lab(lab.name, "vxlan-wrong-vni")
    assert (again.done, k.log) == ([command_of(neigh)], [neigh])
    assert len(again.in_place) == len(steps) - 1
    vx_del, vx_add = steps[0], steps[1]
    assert isinstance(vx_del.res, Vxlan) and vx_del.verb == "del"
    k.apply([Op("del", vx_add.res), Op("add", vx_del.res)])  # flannel.1 made again by hand, planned VNI, bare
    k.log.clear()
    again = break_run.break_lab(lab.name, "vxlan-wrong-vni")
    assert k.log == steps and not again.in_place  # the device deleted again: everything on it added again
