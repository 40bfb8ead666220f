"""A running lab's rollback puts back the Flannel files of the nodes whose podCIDR the cancelled run changed
(services/put_back.py), and no other node's: one edited by hand since the lab's last up stays edited, as every other
file a rollback does not put back (a rollback is not a repair). It rewrote every node's files as soon as one node's
differed. No root: the nodes' files live in the test's state directory, the lab has no pods."""

from __future__ import annotations

from netlab.api.topology import load
from netlab.realize.state import LabState
from netlab.plan import flannel
from netlab.services import flannel_files
from netlab.services import put_back as back


def _lab(cidr: str):
    topo = {"name": "fpb", "nodes": [{"name": "node-1", "podCIDR": cidr}, {"name": "node-2", "podCIDR": "10.244.1.0/24"}]}
    return load(topo, running=False).lab


def test_a_rollback_rewrites_the_changed_nodes_flannel_files_alone():
    lab, ran = _lab("10.244.0.0/24"), _lab("10.244.7.0/24")  # the run moved node-1's pod block
    state = LabState(lab="fpb", topology={}, phase="up")
    flannel_files.sync(ran, state)  # as the run left them
    edited = flannel_files.where("fpb", "node-2", flannel.SUBNET_ENV)
    with open(edited, "a", encoding="utf-8") as fh:
        fh.write("FLANNEL_IPMASQ=false\n")  # node-2's, edited by hand since: no rollback's to put back
    problems = back.put_back(lab, state, {}, ran, (), {})
    assert problems == []
    assert flannel_files.read("fpb", "node-1")[flannel.SUBNET_ENV][1] == flannel.subnet_env(lab, lab.nodes[0])
    assert open(edited, encoding="utf-8").read().endswith("FLANNEL_IPMASQ=false\n")
