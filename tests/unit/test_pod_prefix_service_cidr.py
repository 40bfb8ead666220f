"""A CNI pod's eth0 prefix that covers the Service CIDR (host-local's ``subnet: 10.0.0.0/8`` around a node's
10.0.0.0/24, with the default serviceCIDR 10.96.0.0/12 inside it): the pod takes every ClusterIP for a neighbour on
eth0 and ARPs for it, nobody answers (no host has a ClusterIP: kube-proxy DNATs it on the node, which only a packet
sent to the pod's gateway reaches), and no Service works from that pod. status's wide-prefix warning named only the
other nodes' pod CIDRs the prefix covers, and said nothing on a one-node lab. Pure: model.lab.Lab.wide_prefix
(status reads the prefix: tests/unit/test_pod_prefix_wider.py)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from netlab.model.lab import CniAttachment, resolve
from netlab.model.load import load_topology

SERVICES = "the Services' ClusterIPs (cluster.serviceCIDR 10.96.0.0/12)"
WHY_SVC = ("a ClusterIP is no host's address: kube-proxy DNATs it on the node, which only a packet sent to the pod's "
           "gateway reaches")


def lab_of(tmp_path, nodes: int, service_cidr: str = "", mode: str = "vxlan"):
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "bridge", "ipam": {"type": "host-local"}}]}))
    (tmp_path / "bin").mkdir(exist_ok=True)
    cluster = f"cluster: {{podCIDR: 10.0.0.0/16{f', serviceCIDR: {service_cidr}' if service_cidr else ''}}}\n"
    names = [f"n{i + 1}" for i in range(nodes)]
    (tmp_path / "t.yaml").write_text(
        f"name: ps\nnetwork: {{mode: {mode}, cni: {{conflist: net.conflist, binDir: bin}}}}\n" + cluster
        + f"nodes: [{', '.join(f'{{name: {n}}}' for n in names)}]\n"
        + f"pods: [{', '.join(f'{{name: p{i + 1}, node: {n}}}' for i, n in enumerate(names))}]\n")
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    return lab.with_attachments({f"p{i + 1}": CniAttachment(ip=IPv4Address(f"10.0.{i}.2"), host_veth="veth0",
                                                                      host_ifaces=("cni0", "veth0")) for i in range(nodes)})


def test_a_prefix_covering_the_service_cidr_is_said_on_a_one_node_lab(tmp_path):
    lab = lab_of(tmp_path, 1)
    assert lab.wide_prefix("p1", 8) == (
        f"pod p1's eth0 10.0.0.2/8 (from its CNI plugins) is on-link wider than node n1's podCIDR 10.0.0.0/24: it "
        f"ARPs on eth0 for {SERVICES} in 10.0.0.0/8 and nobody answers ({WHY_SVC}), so it reaches no Service by its "
        "ClusterIP (the plugins' IPAM must give the node's podCIDR's prefix, /24)")


def test_a_prefix_covering_other_nodes_and_the_service_cidr_names_both(tmp_path):
    lab = lab_of(tmp_path, 2)
    assert lab.wide_prefix("p1", 8) == (
        f"pod p1's eth0 10.0.0.2/8 (from its CNI plugins) is on-link wider than node n1's podCIDR 10.0.0.0/24: it "
        f"ARPs on eth0 for the pods of node n2 (10.0.1.0/24) and {SERVICES} in 10.0.0.0/8 and nobody answers (its "
        f"node's bridge carries only its own pods; {WHY_SVC}), so it reaches no pod of theirs, nor they it, nor "
        "those nodes themselves (a node's own packets to a pod on another node, to a Service whose endpoint is there "
        "too, leave from its flannel.1 address, 10.0.1.0 on n2, inside the prefix), and no Service by its ClusterIP "
        "(the plugins' IPAM must give the node's podCIDR's prefix, /24)")


def test_a_prefix_that_stops_short_of_the_service_cidr_names_the_nodes_only(tmp_path):
    lab = lab_of(tmp_path, 2)
    said = lab.wide_prefix("p1", 16)  # 10.0.0.0/16: n2's pods, not 10.96.0.0/12
    assert said is not None and "n2 (10.0.1.0/24)" in said and "ClusterIP" not in said
    assert lab_of(tmp_path, 1).wide_prefix("p1", 16) is None  # one node: nothing it covers is lost
    assert lab_of(tmp_path, 1).wide_prefix("p1", 24) is None


def test_a_service_cidr_partly_inside_the_prefix_counts_too(tmp_path):
    # a serviceCIDR of its own, 10.1.0.0/17, inside the pod's on-link 10.0.0.0/12
    lab = lab_of(tmp_path, 1, service_cidr="10.1.0.0/17")
    said = lab.wide_prefix("p1", 12)
    assert said is not None and "the Services' ClusterIPs (cluster.serviceCIDR 10.1.0.0/17) in 10.0.0.0/12" in said


def test_host_gw_nodes_send_their_own_packets_from_the_underlay_outside_the_prefix(tmp_path):
    # host-gw routes another node's pods via that node's underlay address, which a node's own packets leave from
    said = lab_of(tmp_path, 2, mode="host-gw").wide_prefix("p1", 16)
    assert said is not None and "n2 (10.0.1.0/24)" in said and "flannel.1" not in said
