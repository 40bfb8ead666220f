"""vxlan-wrong-vni's fault, as trace must tell it: one node's flannel.1 has another VNI than the plan's. The
receiving node drops the packet; trace names the node whose device is not the plan's VNI (the sender or the
receiver) and gives the fix, the lab's repair (a VXLAN device's VNI cannot change in place: it is made again).

It printed no fix, and named the sender as the one "with a VXLAN device of another VNI" even when the sender was
the healthy one and the receiver the odd one.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from netlab.plan.build import build_plan
from netlab.trace.flow import Flow
from netlab.trace.labmap import LabMap
from netlab.trace.walk import walk
from test_trace_walk import FakeKernel, lab_from

TOPO = """name: t2
network: {mode: vxlan, underlay: {cidr: 192.168.79.0/24, mtu: 1500}}
nodes: [{name: a}, {name: b}]
pods: [{name: x1, node: a}, {name: x2, node: b}]
"""
WHY = "a VXLAN device's VNI cannot change in place: it must be made again with the plan's VNI"


def broken(odd: str):
    """The lab with node ``odd``'s flannel.1 made again with VNI 2 (the plan's is 1)."""
    lab = lab_from(TOPO)
    plan = build_plan(lab)
    m = LabMap.from_lab(lab, plan)
    m.repair = "sudo netlab up -t t2.yaml"
    k = FakeKernel(lab, plan)
    ns = lab.node(odd).netns
    vx = k._links[ns]["flannel.1"]
    assert vx.vxlan is not None and m.planned_vni[(ns, "flannel.1")] == vx.vxlan.vni == 1
    k._links[ns]["flannel.1"] = replace(vx, vxlan=replace(vx.vxlan, vni=2))
    return lab, m, k


@pytest.mark.parametrize("src, dst, role", [("x2", "x1", "the receiver"), ("x1", "x2", "the sender")])
def test_the_node_whose_vni_is_not_the_plans_is_named_with_the_fix(src, dst, role):
    lab, m, k = broken("a")
    w = walk(k, m, lab.pod(src).netns, Flow.icmp(None, str(lab.pod(dst).ip), 1))
    last = w.hops[-1]
    receiver = lab.node(lab.pod(dst).node).netns
    assert (w.outcome, last.netns, last.device) == ("stopped", receiver, "flannel.1"), last
    sent, has = (1, 2) if role == "the receiver" else (2, 1)
    assert last.problem == (f"the packet carries VNI {sent} but flannel.1 in {receiver} is VNI {has}: dropped; "
                            f"flannel.1 in t2-a (node a, {role}) is VNI 2, not the plan's VNI 1; {WHY} (and its "
                            "address, ARP and FDB entries and routes with it)"), last.problem
    # the repair, and what it changes: `up` makes the odd node's device again (it said only `netlab up`)
    assert last.fix == (f"{m.repair}   (it deletes flannel.1 in t2-a (node a) and makes it again with VNI 1, then "
                        "adds back the device's address, ARP and FDB entries and routes as the plan has them)")


def test_the_fix_line_says_the_repair_once():
    """Its fix is `up -t FILE` with a note: the note's apostrophe ("the device's") made the line no command a shell
    reads, so render added "(or: sudo netlab up -t FILE, which repairs the lab)" after the same command (QA im60 5)."""
    from netlab.trace import faults

    lab, m, k = broken("a")
    w = walk(k, m, lab.pod("x2").netns, Flow.icmp(None, str(lab.pod("x1").ip), 1))
    assert not faults.up_repairs(w.hops[-1].fix)
    assert faults.up_repairs("ip -n n1 link set eth0 up   (it's down)")  # a note's apostrophe changes nothing
