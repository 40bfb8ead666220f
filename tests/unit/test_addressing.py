"""IPAM: explicit addresses first, then the lowest free ones in file order; always the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network

from netlab.model.addressing import allocate, pod_capacity, underlay_gateway
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.model.topology import Topology


def topo(**data) -> Topology:
    data.setdefault("name", "x")
    return Topology.model_validate(data)


def addresses(t: Topology):
    addr, problems = allocate(t)
    assert problems == []
    return addr


def strs(mapping: dict) -> dict:
    return {k: str(v) for k, v in mapping.items()}


def test_default_lab_matches_the_tutorial():
    lab = resolve(load_topology(None))
    assert [(n.name, str(n.ip), str(n.pod_cidr), str(n.gateway), str(n.vtep_ip)) for n in lab.nodes] == [
        ("minikube", "192.168.122.215", "10.244.0.0/24", "10.244.0.1/24", "10.244.0.0"),
        ("minikube-m02", "192.168.122.7", "10.244.1.0/24", "10.244.1.1/24", "10.244.1.0"),
    ]
    assert {p.name: (str(p.ip), p.mac) for p in lab.pods} == {
        "fedora-1": ("10.244.0.2", "9e:b4:a1:d1:ba:d3"),
        "fedora-2": ("10.244.1.3", "c2:a5:48:33:74:76"),
        "fedora-3": ("10.244.0.3", "9e:c9:f8:b9:73:45"),
        "fedora-4": ("10.244.1.2", "12:ba:03:a5:20:1a"),
    }
    assert str(lab.addressing.gateway_underlay_ip) == "192.168.122.1"


def test_nodes_get_underlay_addresses_from_2_around_explicit_ones():
    a = addresses(topo(nodes=[{"name": "a"}, {"name": "b", "ip": "192.168.122.2"}, {"name": "c"}]))
    assert strs(a.node_ip) == {"a": "192.168.122.3", "b": "192.168.122.2", "c": "192.168.122.4"}


def test_node_pod_cidrs_skip_explicit_blocks():
    a = addresses(topo(nodes=[{"name": "a"}, {"name": "b", "podCIDR": "10.244.0.0/24"}, {"name": "c"}]))
    assert strs(a.node_pod_cidr) == {"a": "10.244.1.0/24", "b": "10.244.0.0/24", "c": "10.244.2.0/24"}


def test_node_mask_sets_the_block_size():
    a = addresses(topo(cluster={"podCIDR": "10.42.0.0/16", "nodeMask": 26}, nodes=[{"name": "a"}, {"name": "b"}]))
    assert strs(a.node_pod_cidr) == {"a": "10.42.0.0/26", "b": "10.42.0.64/26"}


def test_pods_get_addresses_from_2_of_their_node_around_explicit_ones():
    a = addresses(topo(nodes=[{"name": "a"}, {"name": "b"}],
                       pods=[{"name": "p1", "node": "a"}, {"name": "p2", "node": "b"},
                             {"name": "p3", "node": "a", "ip": "10.244.0.2"}, {"name": "p4", "node": "a"}]))
    assert strs(a.pod_ip) == {"p1": "10.244.0.3", "p2": "10.244.1.2", "p3": "10.244.0.2", "p4": "10.244.0.4"}


def test_services_get_cluster_ips_from_10_around_explicit_ones():
    a = addresses(topo(nodes=[{"name": "a"}],
                       services=[{"name": "s1", "ports": [{"port": 80}]},
                                 {"name": "s2", "clusterIP": "10.96.0.10", "ports": [{"port": 80}]},
                                 {"name": "s3", "ports": [{"port": 80}]}]))
    assert strs(a.service_ip) == {("default", "s1"): "10.96.0.11", ("default", "s2"): "10.96.0.10",
                                  ("default", "s3"): "10.96.0.12"}


def test_an_explicit_address_never_moves_other_explicit_ones():
    base = [{"name": "p1", "node": "a", "ip": "10.244.0.5"}, {"name": "p2", "node": "a"}]
    before = addresses(topo(nodes=[{"name": "a"}], pods=base)).pod_ip
    after = addresses(topo(nodes=[{"name": "a"}], pods=base + [{"name": "p3", "node": "a", "ip": "10.244.0.2"}])).pod_ip
    assert before["p1"] == after["p1"] == IPv4Address("10.244.0.5")
    assert str(after["p2"]) == "10.244.0.3"  # .2 is now explicit, so the allocated one moves up


def test_capacity_helpers():
    assert pod_capacity(IPv4Network("10.0.0.0/24")) == 253
    assert pod_capacity(IPv4Network("10.0.0.0/28")) == 13
    assert underlay_gateway(IPv4Network("192.168.122.0/24")) == IPv4Address("192.168.122.1")


def test_a_full_node_block_is_usable_to_its_last_address():
    a = addresses(topo(cluster={"nodeMask": 28}, nodes=[{"name": "a"}],
                       pods=[{"name": f"p{i}", "node": "a"} for i in range(13)]))
    assert sorted(int(ip) & 0xF for ip in a.pod_ip.values()) == list(range(2, 15))


def test_a_bridge_holds_1023_pods():
    pods = [{"name": f"p{i}", "node": "a"} for i in range(1023)]
    a = addresses(topo(cluster={"nodeMask": 21}, nodes=[{"name": "a"}], pods=pods))
    assert len(set(a.pod_ip.values())) == 1023
    _, problems = allocate(topo(cluster={"nodeMask": 21}, nodes=[{"name": "a"}],
                                pods=pods + [{"name": "p1023", "node": "a"}]))
    assert [loc for loc, _ in problems] == [("pods", 1023, "node")]


def test_every_allocated_address_is_unique_and_in_range():
    pods = [{"name": f"p{i}", "node": "abc"[i % 3]} for i in range(60)]
    t = topo(cluster={"nodeMask": 26}, nodes=[{"name": n} for n in "abc"], pods=pods,
             services=[{"name": f"s{i}", "ports": [{"port": 80}]} for i in range(20)])
    a = addresses(t)
    assert len(set(a.pod_ip.values())) == 60
    for pod in t.pods:
        block = a.node_pod_cidr[pod.node]
        assert a.pod_ip[pod.name] in block and int(a.pod_ip[pod.name]) - int(block.network_address) >= 2
    assert len(set(a.service_ip.values())) == 20
    assert all(ip in t.cluster.service_cidr for ip in a.service_ip.values())
    assert len(set(a.node_ip.values()) | {a.gateway_underlay_ip}) == 4


def test_same_topology_same_addresses_and_macs():
    t = load_topology(None)
    one, two = resolve(t), resolve(load_topology(None))
    assert one.nodes == two.nodes
    assert [(p.name, p.ip, p.mac, p.host_veth) for p in one.pods] == [(p.name, p.ip, p.mac, p.host_veth)
                                                                      for p in two.pods]


DUMP = r"""
import json, sys
from netlab.model.lab import resolve
from netlab.model.load import load_topology
lab = resolve(load_topology(sys.argv[1]))
print(json.dumps({
    "nodes": [[n.name, str(n.ip), str(n.pod_cidr), n.eth0_mac, n.bridge_mac, n.vxlan_mac, n.underlay_veth]
              for n in lab.nodes],
    "pods": [[p.name, str(p.ip), p.mac, p.host_veth, p.netns] for p in lab.pods],
    "services": {"/".join(k): str(v) for k, v in lab.addressing.service_ip.items()},
}, sort_keys=True))
"""


def test_addresses_and_macs_do_not_depend_on_the_process(tmp_path):
    """Another interpreter with another hash seed computes exactly the same lab."""
    path = tmp_path / "t.yaml"
    path.write_text("name: seed\nnodes: [{name: a}, {name: b, podCIDR: 10.244.7.0/24}, {name: c}]\n"
                    "pods: [" + ", ".join(f"{{name: p{i}, node: {'abc'[i % 3]}}}" for i in range(12)) + "]\n"
                    "services: [{name: s, ports: [{port: 80}]}, "
                    "{name: t, clusterIP: 10.96.0.20, ports: [{port: 80}]}]\n")
    outputs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-c", DUMP, str(path)], capture_output=True, text=True, env=env,
                              check=True)
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]
    # (kube-dns is added to every lab with Services, at the 10th address)
    assert outputs[0]["services"] == {"default/s": "10.96.0.11", "default/t": "10.96.0.20",
                                      "kube-system/kube-dns": "10.96.0.10"}


def test_macs_are_locally_administered_unicast_and_distinct():
    lab = resolve(topo(nodes=[{"name": n} for n in ("a", "b", "c")],
                       pods=[{"name": f"p{i}", "node": "a"} for i in range(5)]))
    macs = [m for n in lab.nodes for m in (n.eth0_mac, n.bridge_mac, n.vxlan_mac)] + [p.mac for p in lab.pods]
    assert len(set(macs)) == len(macs)
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0b10 and not first & 0b01, mac  # locally administered, unicast


def test_the_underlay_bridge_limits_the_node_count():
    nodes = [{"name": f"n{i}"} for i in range(1023)]
    big = {"cluster": {"podCIDR": "10.0.0.0/8", "nodeMask": 24}, "network": {"underlay": {"cidr": "172.16.0.0/20"}}}
    assert allocate(topo(nodes=nodes, **big))[1] == []
    _, problems = allocate(topo(nodes=nodes, internet={}, **big))  # the gateway takes one port
    assert [loc for loc, _ in problems] == [("nodes",)]
    _, problems = allocate(topo(nodes=nodes + [{"name": "n1023"}], **big))
    assert [loc for loc, _ in problems] == [("nodes",)]
