"""A node's interfaces come in the order a real Flannel node has them (root; QA 62k): lo, eth0, flannel.1
(flanneld starts before any pod), cni0 (the bridge plugin makes it at the first pod's ADD), then the pods' veths;
in host-gw mode lo, eth0, cni0, veths. `ip -j link` (the kernel's own order: by ifindex) said cni0 first."""

from __future__ import annotations

import pytest

from helpers import ip_json, lab_up, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root


@pytest.mark.parametrize("mode", ["vxlan", "host-gw"])
def test_a_node_lists_eth0_then_flannels_device_then_cni0_then_the_veths(tmp_path, mode):
    name = unique_lab("lbo")
    path = write_topology(tmp_path, two_node_topology(name, mode))
    with lab_up(path, name, in_process=True):
        for node in ("minikube", "minikube-m02"):
            links = ip_json("link", "show", netns=f"{name}-{node}")
            names = [link["ifname"] for link in links]
            first = ["lo", "eth0"] + (["flannel.1"] if mode == "vxlan" else []) + ["cni0"]
            assert names[:len(first)] == first and len(names) == len(first) + 2, names
            assert [link["ifindex"] for link in links] == list(range(1, len(names) + 1)), links
            assert all(n.startswith("veth") for n in names[len(first):]), names
