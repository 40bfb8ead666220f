"""The planner keeps a removed pod's address from new pods while its CNI record says its plugins may hold its lease
(its DEL failed, or has not run): host-local refuses to lease that address again, and every `up` failed ("requested
IP address 10.244.0.3 is not available"; QA cnf63 #3). Pure: no plugin runs, no root."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from types import SimpleNamespace

import yaml

from netlab.model.addressing import Held, HeldPod
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize.attachments import record_leases

N1 = IPv4Network("10.244.0.0/24")


def _topo(*pods: str) -> Topology:
    return Topology.model_validate(yaml.safe_load(
        "name: cfkp\nnodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n"
        + "".join(f"  - {{name: {p}, node: n1}}\n" for p in pods)))


def _held(**leases: str) -> Held:
    return Held(pods={"a": HeldPod("default", "n1", N1, IPv4Address("10.244.0.2"))},
                cni_leases={k: IPv4Address(v) for k, v in leases.items()})


def test_a_new_pod_does_not_get_the_address_a_removed_pods_kept_record_holds():
    lab = resolve(_topo("a", "c"), _held(b="10.244.0.3"))
    assert (lab.pod("a").ip, lab.pod("c").ip) == (IPv4Address("10.244.0.2"), IPv4Address("10.244.0.4"))


def test_without_a_kept_record_the_lowest_free_address_is_given():
    lab = resolve(_topo("a", "c"), _held())
    assert lab.pod("c").ip == IPv4Address("10.244.0.3")


def test_a_pod_of_the_topology_is_not_kept_from_its_own_records_address():
    """b back in the file: its own record's address is no other pod's (b is held, or planned, as before)."""
    lab = resolve(_topo("a", "b"), _held(b="10.244.0.3"))
    assert lab.pod("b").ip == IPv4Address("10.244.0.3")


def test_the_records_that_may_hold_a_lease():
    att = {"ip": "10.244.0.3"}
    pods = {"added": {"phase": "added", "attachment": att, "args": [["IP", "10.244.0.9"]]},
            "del_failed": {"phase": "added", "attachment": {"ip": "10.244.0.5"}, "del_failed": True},
            "adding": {"phase": "adding", "args": [["IgnoreUnknown", "1"], ["IP", "10.244.0.6/24"]]},
            "adding_again": {"phase": "adding", "attachment": {"ip": "10.244.0.7"}},
            "deleted": {"phase": "deleted", "attachment": att}, "detaching": {"phase": "detaching", "attachment": att},
            "terminated": {"phase": "terminated", "attachment": att}, "damaged": {"phase": "added",
                                                                                 "attachment": {"ip": "x"}}}
    state = SimpleNamespace(extra={"cni": {"pods": pods}})
    assert record_leases(state) == {"added": IPv4Address("10.244.0.3"), "del_failed": IPv4Address("10.244.0.5"),
                                    "adding": IPv4Address("10.244.0.6"), "adding_again": IPv4Address("10.244.0.7")}
