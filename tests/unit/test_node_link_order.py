"""A node's interfaces in the order a real Flannel node has them (QA 62k): its NIC (eth0), flanneld's flannel.1
(flanneld starts before any pod), then cni0, which the bridge plugin makes at the first pod's CNI ADD, then the
pods' veths. `ip link` lists by ifindex, which the kernel gives a namespace's links in the order they are made
(netlab gives each its index in that order): netlab made cni0 first (cni0 2, eth0 3, veths, flannel.1 last)."""

from __future__ import annotations

import pytest

from netlab.model import naming
import yaml

from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan.build import build_plan
from netlab.plan.resources import Link, Veth
from netlab.realize.repair import create_ops, ordered

TOPO = {"name": "lbo", "nodes": [{"name": "n1", "ip": "192.168.122.2", "podCIDR": "10.244.0.0/24"},
                                 {"name": "n2", "ip": "192.168.122.3", "podCIDR": "10.244.1.0/24"}],
        "pods": [{"name": "a", "node": "n1", "ip": "10.244.0.2"}, {"name": "b", "node": "n1", "ip": "10.244.0.3"},
                 {"name": "c", "node": "n2", "ip": "10.244.1.2"}]}


def _made_in(netns: str, mode: str) -> list[str]:
    text = yaml.safe_dump({**TOPO, "network": {"mode": mode}})
    lab = resolve(validate_source(parse_yaml(text, "t.yaml")))
    out = []
    for op in ordered(create_ops(build_plan(lab).resources)):
        r = op.res
        if op.verb == "add" and isinstance(r, Link):
            if r.netns == netns:
                out.append(r.name)
            elif isinstance(r, Veth) and r.peer_netns == netns:
                out.append(r.peer_name)
    return out


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_a_node_makes_eth0_then_flannels_device_then_cni0_then_the_pods_veths(mode):
    made = _made_in("lbo-n1", mode)
    first = [naming.NODE_IF] + (["flannel.1"] if mode == "vxlan" else []) + [naming.BRIDGE]
    assert made[:len(first)] == first and len(made) == len(first) + 2, made
    assert all(name.startswith("veth") for name in made[len(first):]), made
    assert _made_in("lbo-underlay", mode)[0] == naming.UNDERLAY_BRIDGE
