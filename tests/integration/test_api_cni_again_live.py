"""A CNI lab brought up, down and up again in one Python process (a notebook, a script's loop): the second up
makes the lab's cni folder again. The process remembered the folder as made after the down had removed it, and the
second Lab.up() failed at its first plugin call on <lab>/cni/calls.jsonl.lock (QA q17 4)."""

from __future__ import annotations

import pytest

from helpers import ip_json, lab_down, lab_namespaces, unique_lab
from netlab import Lab

pytestmark = pytest.mark.root


def test_a_cni_lab_comes_up_again_in_the_same_process_after_its_down():
    name = unique_lab("ca")
    topo = {"name": name, "network": {"cni": "reference"}, "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]}
    try:
        for _ in range(2):
            lab = Lab.up(topo)
            assert lab.status().ok
            assert ip_json("addr", "show", "eth0", netns=f"{name}-a")[0]["addr_info"], "pod a has no address"
            assert lab.reach("a", "b").reachable
            lab.down()
            assert not lab_namespaces(name)
    finally:
        lab_down(name)
