"""A lab whose VNI is 7 has flannel.7, not flannel.1 (QA im60 3): trace's names of the VTEP addresses and the
break catalogue said flannel.1 whatever the lab's device was."""

from __future__ import annotations

from helpers import two_node_topology
from netlab.breaks import catalogue
from netlab.plan.build import build_plan
from netlab.trace.labmap import LabMap
from test_trace_walk import lab_from


def test_trace_names_a_vtep_address_after_the_lab_s_vxlan_device():
    text = two_node_topology("demo").replace("  mode: vxlan\n", "  mode: vxlan\n  vxlan: {vni: 7}\n")
    lab = lab_from(text)
    m = LabMap.from_lab(lab, build_plan(lab))
    vtep = str(lab.node("minikube").vtep_ip)
    assert m.ip_names[vtep] == "minikube flannel.7"


def test_the_catalogue_says_flannel_n_not_flannel_1():
    """The catalogue is the same for every lab: its VXLAN device is flannel.N (N the lab's VNI)."""
    for s in catalogue.SCENARIOS:
        for field, value in s.to_json().items():
            assert "flannel.1" not in str(value), (s.name, field, value)
