"""QA 61 2: a host-local IPAM with a range of its own (rangeStart/rangeEnd, or a subnet that is not the node's
podCIDR, no ipRanges capability) cannot give a pod its planned address: netlab asked for it anyway (CNI_ARGS IP=,
runtimeConfig.ips), and host-local refused every ADD ("failed to allocate all requested IPs"). A pod without ip:
is asked for none (containerd never sets IP=); one with ip: still is (its ADD says if the range lacks it)."""

from __future__ import annotations

import json

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.cniadd import add_steps


def _lab(tmp_path, ipam: dict, caps: dict | None = None):
    plugin = {"type": "bridge", "ipam": {"type": "host-local", **ipam}, **({"capabilities": caps} if caps else {})}
    (tmp_path / "c.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "r", "plugins": [plugin]}))
    (tmp_path / "t.yaml").write_text("name: cnr\nnetwork: {cni: {conflist: ./c.conflist}}\n"
                                     "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\n"
                                     "pods: [{name: a, node: n1}, {name: b, node: n1, ip: 10.244.0.150}]\n")
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def _args(step) -> str:
    return dict(step.env)["CNI_ARGS"]


@pytest.mark.parametrize("ipam", [
    {"ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.100", "rangeEnd": "10.244.0.200"}]]},
    {"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.100"},
    {"ranges": [[{"subnet": "10.99.0.0/24"}]]},
], ids=["ranges", "old-subnet", "other-subnet"])
def test_a_pod_without_ip_is_asked_for_no_address_its_range_cannot_give(tmp_path, ipam):
    a, b = add_steps(_lab(tmp_path, ipam))
    assert "IP=" not in _args(a) and "IP=10.244.0.150" in _args(b), (_args(a), _args(b))
    assert any("no IP=" in line for line in a.expected), a.expected


@pytest.mark.parametrize("ipam, caps", [
    ({"ranges": [[{"subnet": "10.244.0.0/24"}]]}, None),  # the podCIDR itself: host-local gives the planned one
    ({}, {"ipRanges": True}),  # the runtime's podCIDR first
    ({"ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.2"}]]}, None),
])
def test_a_range_that_holds_the_planned_address_is_asked_for_it(tmp_path, ipam, caps):
    a, _ = add_steps(_lab(tmp_path, ipam, caps))
    assert "IP=10.244.0.2" in _args(a), _args(a)
