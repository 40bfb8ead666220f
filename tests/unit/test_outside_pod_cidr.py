"""A pod whose CNI plugins gave it an address outside its node's pod CIDR (an IPAM range of its own): no other node
reaches it, as Flannel routes only the pod CIDRs. It was silent (status "all as planned", trace blaming the
underlay's ip_forward); now a line names the pod, the address, the node and its podCIDR, for up's and status's
warning (the address is the plugins', which the lab follows: no drift, cn61) and trace's cause."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from netlab.model.lab import CniAttachment, resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.trace.labmap import LabMap

TOPO = """name: po
network: {cni: {conflist: net.conflist, binDir: bin}}
nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]
pods: [{name: a, node: n1}, {name: b, node: n2}, {name: c, node: n2}]
"""
A = ("pod a's address 10.99.0.2 (from its CNI result) is outside node n1's podCIDR 10.244.0.0/24: the address is its "
     "plugins' (the lab follows it), but Flannel routes only the pod CIDRs, so other nodes send it by their default "
     "route to the underlay, which drops it (for them to reach it, the plugins' IPAM must give the node's podCIDR, as "
     "the ipRanges capability passes it, with no subnet or ranges of its own)")


def lab_of(tmp_path, given: dict[str, str]):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local"}}]}))
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "t.yaml").write_text(TOPO)
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    return lab.with_attachments({pod: CniAttachment(ip=IPv4Address(ip)) for pod, ip in given.items()})


def test_each_pod_outside_its_nodes_pod_cidr_is_named_with_its_address_node_and_cidr(tmp_path):
    # b's address is another node's pod CIDR's: outside its own node's all the same (n2 routes it to n1)
    lab = lab_of(tmp_path, {"a": "10.99.0.2", "b": "10.244.0.7", "c": "10.244.1.2"})
    said = lab.outside_pod_cidrs()
    assert said == {"a": A, "b": said["b"]}, said
    assert said["b"].startswith("pod b's address 10.244.0.7 (from its CNI result) is outside node n2's podCIDR "
                                "10.244.1.0/24: "), said
    # not attached (a builtin lab, a fresh lab before its plugins ran): netlab's addresses, in the CIDRs
    assert lab_of(tmp_path, {}).outside_pod_cidrs() == {}


def test_trace_names_it_where_a_node_sends_it_by_default(tmp_path):
    lab = lab_of(tmp_path, {"a": "10.99.0.2", "b": "10.244.1.2", "c": "10.244.1.3"})
    m = LabMap.from_lab(lab, build_plan(lab))
    n2 = lab.node("n2").netns
    assert m.outside_by_default(n2, "10.99.0.2", "default via 192.168.122.1 dev eth0") == (A, None)
    assert m.outside_by_default(n2, "10.99.0.2", "10.99.0.0/16 dev eth0") is None  # not the default route
    assert m.outside_by_default(lab.pod("b").netns, "10.99.0.2", "default via 10.244.1.1 dev eth0") is None  # a pod
    assert m.outside_by_default(n2, "10.244.1.3", "default via 192.168.122.1 dev eth0") is None  # in its CIDR
