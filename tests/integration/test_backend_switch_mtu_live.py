"""A backend switch on a running lab (root; QA 62k): `up` sets the running pods' MTU in place, which a real
cluster does not do (a pod keeps the MTU its CNI ADD gave until it is recreated), and says so in one warning
naming the pods and both MTUs; the kernel's view (`ip -j link`) holds the new MTU on each pod's eth0."""

from __future__ import annotations

import json

import pytest

from helpers import ip_json, lab_up, netlab, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_a_backend_switch_says_the_running_pods_mtu_was_set_in_place(tmp_path):
    name = unique_lab("lbs")
    path = write_topology(tmp_path, two_node_topology(name, "vxlan", pods_per_node=1), "lab.yaml")
    with lab_up(path, name, in_process=True):
        assert ip_json("link", "show", "eth0", netns=f"{name}-fedora-1")[0]["mtu"] == 1450
        write_topology(tmp_path, two_node_topology(name, "host-gw", pods_per_node=1), "lab.yaml")
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert [w for w in out["warnings"] if "MTU" in w] == [
            "pods fedora-1, fedora-2: eth0's MTU set from 1450 to 1500 in place (the backend changed from vxlan to "
            "host-gw); on a real cluster a running pod keeps the MTU its CNI ADD gave until it is recreated, and "
            "only new pods get 1500"], out["warnings"]
        for pod in ("fedora-1", "fedora-2"):
            assert ip_json("link", "show", "eth0", netns=f"{name}-{pod}")[0]["mtu"] == 1500
