"""IPAM of a running lab's nodes and load balancers: a node keeps its underlay IP (its InternalIP) and its pod
CIDR block (spec.podCIDR, which the node IPAM controller never changes) for its life, and so its pods keep their
addresses; a LoadBalancer Service keeps its external IP. New ones take the lowest free (the highest, for load
balancers); a fresh lab is allocated in file order, as before. tests/unit/test_addressing_held.py: the pods'."""

from __future__ import annotations

import json

import pytest

from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.topology import Topology

SVC = {"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}


def lab_of(nodes, held=None, services=(), internet=None):
    """One pod per node (``p-NODE``), plus the cluster DNS when there are Services."""
    data = {"name": "x", "nodes": [n if isinstance(n, dict) else {"name": n} for n in nodes],
            "pods": [{"name": f"p-{n if isinstance(n, str) else n['name']}",
                      "node": n if isinstance(n, str) else n["name"], "labels": {"app": "web"}} for n in nodes],
            "services": list(services)}
    if internet:
        data["internet"] = internet
    return resolve(Topology.model_validate(data), held)


def nodes_of(lab) -> dict[str, tuple[str, str]]:
    return {n: (str(lab.addressing.node_ip[n]), str(lab.addressing.node_pod_cidr[n]))
            for n in lab.addressing.node_ip}


def ips(lab) -> dict[str, str]:
    return {p.name: str(p.ip) for p in lab.pods}


RUNNING = {"n1": ("192.168.122.2", "10.244.0.0/24"), "n2": ("192.168.122.3", "10.244.1.0/24")}


@pytest.mark.parametrize("order", [("new", "n1", "n2"), ("n1", "new", "n2"), ("n1", "n2", "new")])
def test_a_node_inserted_anywhere_takes_the_lowest_free_block_and_ip_and_moves_no_running_node(order):
    running = lab_of(["n1", "n2"], services=[SVC])
    assert nodes_of(running) == RUNNING
    before = ips(running)
    lab = lab_of(list(order), held=running.held(), services=[SVC])
    assert nodes_of(lab) == {**RUNNING, "new": ("192.168.122.4", "10.244.2.0/24")}
    # every running pod keeps its address, the cluster DNS on n1 too (it stays on its node)
    assert {p: ip for p, ip in ips(lab).items() if p != "p-new"} == before
    assert lab.pod("kube-dns").node == "n1" and ips(lab)["p-new"] == "10.244.2.2"
    assert lab.displaced() == []
    fresh = lab_of(list(order), services=[SVC])  # the same file, no lab up: file order, as always
    assert [nodes_of(fresh)[n] for n in order] == [("192.168.122.2", "10.244.0.0/24"),
                                                   ("192.168.122.3", "10.244.1.0/24"),
                                                   ("192.168.122.4", "10.244.2.0/24")]


def test_a_removed_node_frees_its_block_and_ip_for_the_next_new_node():
    running = lab_of(["n1", "n2", "n3"])
    smaller = lab_of(["n1", "n3"], held=running.held())
    assert nodes_of(smaller) == {"n1": RUNNING["n1"], "n3": ("192.168.122.4", "10.244.2.0/24")}
    assert ips(smaller) == {"p-n1": "10.244.0.2", "p-n3": "10.244.2.2"}
    again = lab_of(["n4", "n1", "n3", "n5"], held=smaller.held())
    assert nodes_of(again) == {"n1": RUNNING["n1"], "n3": ("192.168.122.4", "10.244.2.0/24"),
                               "n4": ("192.168.122.3", "10.244.1.0/24"), "n5": ("192.168.122.5", "10.244.3.0/24")}


def test_a_block_or_ip_a_node_pins_goes_to_the_file_and_the_running_holder_gets_a_new_one():
    """The file is what the lab must be: the node that asks for a running node's block (or IP) gets it, as a
    fresh lab of the file would give it; the holder gets the lowest free one, and its pods are made anew there."""
    running = lab_of(["n1", "n2"])
    pinned = lab_of(["n1", {"name": "n3", "podCIDR": "10.244.1.0/24", "ip": "192.168.122.3"}, "n2"],
                    held=running.held())
    assert nodes_of(pinned) == {"n1": RUNNING["n1"], "n3": RUNNING["n2"], "n2": ("192.168.122.4", "10.244.2.0/24")}
    assert ips(pinned) == {"p-n1": "10.244.0.2", "p-n3": "10.244.1.2", "p-n2": "10.244.2.2"}
    assert pinned.displaced() == [
        "node n2 held 192.168.122.3, which node n3 asks for (ip:): it gets 192.168.122.4, a new address",
        "node n2 held 10.244.1.0/24, which node n3 asks for (podCIDR:): it gets 10.244.2.0/24, a new block, "
        "and its pods new addresses in it"]
    # a node's own pins win over what it held, and are no one's loss
    own = lab_of([{"name": "n1", "podCIDR": "10.244.7.0/24"}, "n2"], held=running.held())
    assert nodes_of(own) == {"n1": ("192.168.122.2", "10.244.7.0/24"), "n2": RUNNING["n2"]}
    assert own.displaced() == [] and ips(own)["p-n1"] == "10.244.7.2"
    # kept by the next up: said once
    assert lab_of(["n1", {"name": "n3", "podCIDR": "10.244.1.0/24", "ip": "192.168.122.3"}, "n2"],
                  held=pinned.held()).displaced() == []


def test_a_held_block_or_ip_the_file_no_longer_allows_is_not_kept():
    running = lab_of(["n1", "n2"])
    data = {"name": "x", "nodes": [{"name": "n1"}, {"name": "n2"}], "pods": [],
            "cluster": {"podCIDR": "10.245.0.0/16"}, "network": {"underlay": {"cidr": "10.9.0.0/24"}}}
    moved = resolve(Topology.model_validate(data), running.held())
    assert nodes_of(moved) == {"n1": ("10.9.0.2", "10.245.0.0/24"), "n2": ("10.9.0.3", "10.245.1.0/24")}
    assert moved.displaced() == []


INTERNET = {"cidr": "203.0.113.0/24", "gateway": {"ip": "203.0.113.1"}, "hosts": [{"name": "h1", "ip": "203.0.113.10"}]}


def lb(name, **extra):
    return {**SVC, "name": name, "type": "LoadBalancer", **extra}


def lbs(lab) -> dict[str, str]:
    return {name: str(ip) for (_, name), ip in lab.addressing.lb_ip.items()}


def test_a_load_balancer_inserted_before_another_moves_no_running_ones_ip():
    running = lab_of(["n1"], services=[lb("a")], internet=INTERNET)
    assert lbs(running) == {"a": "203.0.113.254"}
    added = lab_of(["n1"], held=running.held(), services=[lb("new"), lb("a")], internet=INTERNET)
    assert lbs(added) == {"new": "203.0.113.253", "a": "203.0.113.254"} and added.displaced() == []
    fresh = lab_of(["n1"], services=[lb("new"), lb("a")], internet=INTERNET)
    assert lbs(fresh) == {"new": "203.0.113.254", "a": "203.0.113.253"}
    # an explicit loadBalancerIP (or an internet host's ip:) the running one holds goes to the file's
    pinned = lab_of(["n1"], held=running.held(), services=[lb("b", loadBalancerIP="203.0.113.254"), lb("a")],
                    internet=INTERNET)
    assert lbs(pinned) == {"b": "203.0.113.254", "a": "203.0.113.253"}
    assert pinned.displaced() == ["service default/a's load balancer held 203.0.113.254, which service default/b "
                                  "asks for (loadBalancerIP:): it gets 203.0.113.253, a new address"]
    host = lab_of(["n1"], held=running.held(), services=[lb("a")],
                  internet={**INTERNET, "hosts": [{"name": "h2", "ip": "203.0.113.254"}]})
    assert lbs(host) == {"a": "203.0.113.253"}
    assert host.displaced() == ["service default/a's load balancer held 203.0.113.254, which host h2 asks for "
                                "(ip:): it gets 203.0.113.253, a new address"]


def test_held_nodes_and_load_balancers_survive_the_state_file_and_an_older_record_holds_none():
    running = lab_of(["n1", "n2"], services=[lb("a")], internet=INTERNET)
    moved = lab_of(["new", "n1", "n2"], held=running.held(), services=[lb("b"), lb("a")], internet=INTERNET)
    saved = Held.from_json(json.loads(json.dumps(moved.held().to_json())))
    assert saved == moved.held() and set(saved.nodes) == {"new", "n1", "n2"}
    assert dict(saved.load_balancers) == {("default", "b"): moved.addressing.lb_ip[("default", "b")],
                                          ("default", "a"): moved.addressing.lb_ip[("default", "a")]}
    again = resolve(moved.topo, saved)
    assert nodes_of(again) == nodes_of(moved) and lbs(again) == lbs(moved) and ips(again) == ips(moved)
    older = {k: v for k, v in moved.held().to_json().items() if k in ("pods", "services")}
    assert Held.from_json(older).nodes == {} and Held.from_json(older).load_balancers == {}
