"""IPAM of a running lab: its pods and Services keep the addresses they hold (host-local's leases, the API
server's ClusterIPs); new ones take the lowest free; a fresh lab is allocated as before."""

from __future__ import annotations

import json
from netlab.model import dnsrecords
from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.topology import Topology

NODES = [{"name": "n1"}, {"name": "n2"}]


def lab_of(pods, services=(), held=None, nodes=NODES):
    return resolve(Topology.model_validate({"name": "x", "nodes": nodes, "pods": pods, "services": list(services)}),
                   held)


def ips(lab) -> dict[str, str]:
    return {p.name: str(p.ip) for p in lab.pods}


def cluster_ips(lab) -> dict[str, str]:
    return {f"{s.namespace}/{s.name}": str(lab.cluster_ip(s)) for s in lab.services}


def pods(*names, node="n1"):
    return [{"name": n, "node": node} for n in names]


def test_a_pod_inserted_at_the_start_middle_or_end_takes_a_free_address_and_moves_no_running_pod():
    running = lab_of(pods("a", "b", "c"))
    assert ips(running) == {"a": "10.244.0.2", "b": "10.244.0.3", "c": "10.244.0.4"}
    for order in (("new", "a", "b", "c"), ("a", "new", "b", "c"), ("a", "b", "c", "new")):
        lab = lab_of(pods(*order), held=running.held())
        assert ips(lab) == {"a": "10.244.0.2", "b": "10.244.0.3", "c": "10.244.0.4", "new": "10.244.0.5"}, order
        assert lab.pod("b").mac == running.pod("b").mac  # MACs come from the names: they never moved
    fresh = lab_of(pods("a", "new", "b", "c"))  # the same file, no lab up: file order, as always
    assert ips(fresh) == {"a": "10.244.0.2", "new": "10.244.0.3", "b": "10.244.0.4", "c": "10.244.0.5"}


def test_a_removed_pod_frees_its_address_for_the_next_new_one():
    running = lab_of(pods("a", "b", "c"))
    smaller = lab_of(pods("a", "c"), held=running.held())
    assert ips(smaller) == {"a": "10.244.0.2", "c": "10.244.0.4"}
    again = lab_of(pods("d", "a", "c", "e"), held=smaller.held())
    assert ips(again) == {"d": "10.244.0.3", "a": "10.244.0.2", "c": "10.244.0.4", "e": "10.244.0.5"}


def test_a_pod_moved_to_another_node_or_whose_node_block_changed_is_a_new_pod():
    running = lab_of(pods("a", "b") + pods("c", node="n2"))
    moved = lab_of(pods("a") + pods("b", "c", node="n2"), held=running.held())
    assert ips(moved) == {"a": "10.244.0.2", "b": "10.244.1.3", "c": "10.244.1.2"}
    # n1's block is now 10.244.5.0/24: its pods are made anew there, n2's keep theirs
    nodes = [{"name": "n1", "podCIDR": "10.244.5.0/24"}, {"name": "n2", "podCIDR": "10.244.1.0/24"}]
    reblocked = lab_of(pods("b", "a") + pods("c", node="n2"), held=running.held(), nodes=nodes)
    assert ips(reblocked) == {"b": "10.244.5.2", "a": "10.244.5.3", "c": "10.244.1.2"}


def test_a_pod_of_the_same_name_in_another_kubernetes_namespace_is_another_pod():
    running = lab_of(pods("a", "b"))
    other = lab_of([{"name": "b", "node": "n1"}, {"name": "c", "node": "n1"},
                    {"name": "a", "node": "n1", "namespace": "x"}], held=running.held())
    assert ips(other) == {"b": "10.244.0.3", "c": "10.244.0.2", "a": "10.244.0.4"}


def test_the_cluster_dns_pod_and_service_keep_their_addresses_when_pods_and_services_are_added():
    svc = [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80}]}]
    web = [{"name": "w1", "node": "n1", "labels": {"app": "web"}}]
    running = lab_of(web, svc)
    assert ips(running) == {"w1": "10.244.0.2", "kube-dns": "10.244.0.3"}
    assert cluster_ips(running) == {"default/web": "10.96.0.11", "kube-system/kube-dns": "10.96.0.10"}
    w3 = [{"name": "w3", "node": "n1", "labels": {"app": "api"}}]
    added = lab_of(web + w3, [{"name": "api", "selector": {"app": "api"}, "ports": [{"port": 80}]}] + svc,
                   held=running.held())
    assert ips(added) == {"w1": "10.244.0.2", "w3": "10.244.0.4", "kube-dns": "10.244.0.3"}
    assert cluster_ips(added) == {"default/api": "10.96.0.12", "default/web": "10.96.0.11",
                                  "kube-system/kube-dns": "10.96.0.10"}
    dnsmasq = dnsrecords.hosts_file(dnsrecords.cluster_records(added.topo, added.addressing))
    assert "10.244.0.4 " in dnsmasq and "10.96.0.12 " in dnsmasq  # its records are the lab's real addresses
    fresh = lab_of(web + w3, [{"name": "api", "selector": {"app": "api"}, "ports": [{"port": 80}]}] + svc)
    assert ips(fresh)["kube-dns"] == "10.244.0.4" and cluster_ips(fresh)["default/api"] == "10.96.0.11"


def test_an_explicit_address_a_running_pod_holds_goes_to_the_file_and_the_holder_gets_a_new_one():
    """The file is what the lab must be: the pod that asks for the address by ip: gets it, as a fresh lab of
    the file would give it; the running pod that held it gets the lowest free address, and up says so."""
    running = lab_of(pods("a", "b", "c"))
    pinned = lab_of(pods("a", "b") + [{"name": "d", "node": "n1", "ip": "10.244.0.3"}] + pods("c"),
                    held=running.held())
    assert ips(pinned) == {"a": "10.244.0.2", "b": "10.244.0.5", "d": "10.244.0.3", "c": "10.244.0.4"}
    assert pinned.displaced() == [
        "pod b held 10.244.0.3, which pod d asks for (ip:): it gets 10.244.0.5, a new address"]
    assert lab_of(pods("a", "b", "c"), held=running.held()).displaced() == []
    # a pod's own pin wins over what it held
    own = lab_of(pods("a") + [{"name": "b", "node": "n1", "ip": "10.244.0.9"}], held=running.held())
    assert ips(own) == {"a": "10.244.0.2", "b": "10.244.0.9"} and own.displaced() == []


def test_a_service_inserted_mid_list_moves_no_clusterip_and_an_explicit_one_takes_its_address():
    def svc(name, **extra):
        return {"name": name, "selector": {"app": name}, "ports": [{"port": 80}], **extra}

    running = lab_of(pods("a"), [svc("s1"), svc("s2")])
    assert cluster_ips(running)["default/s2"] == "10.96.0.12"
    added = lab_of(pods("a"), [svc("s1"), svc("new"), svc("s2")], held=running.held())
    assert cluster_ips(added) == {"default/s1": "10.96.0.11", "default/new": "10.96.0.13",
                                  "default/s2": "10.96.0.12", "kube-system/kube-dns": "10.96.0.10"}
    pinned = lab_of(pods("a"), [svc("s1"), svc("s3", clusterIP="10.96.0.12"), svc("s2")], held=running.held())
    assert cluster_ips(pinned)["default/s3"] == "10.96.0.12" and cluster_ips(pinned)["default/s2"] == "10.96.0.13"
    assert pinned.displaced() == ["service default/s2 held 10.96.0.12, which service default/s3 asks for "
                                  "(clusterIP:): it gets 10.96.0.13, a new address"]
    headless = lab_of(pods("a"), [svc("s1"), svc("s2", clusterIP="None")], held=running.held())
    assert cluster_ips(headless)["default/s2"] == "None"


def test_held_survives_the_state_file_and_resolving_a_topology_with_its_own_held_is_the_same_lab():
    running = lab_of(pods("a", "b", "c"))
    moved = lab_of(pods("new", "a", "c"), held=running.held())
    saved = Held.from_json(json.loads(json.dumps(moved.held().to_json())))
    assert saved == moved.held()
    again = resolve(moved.topo, saved)
    assert ips(again) == ips(moved) == {"new": "10.244.0.3", "a": "10.244.0.2", "c": "10.244.0.4"}
