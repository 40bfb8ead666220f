"""kube-proxy's nftables table of every node is rendered without redoing the same work per node or per element.

Every node's table names the same service and endpoint chains and holds the same rules (but for
``nodeport-ips``): each chain name's sha256 is taken once and each rule's listed form worked out once
for the whole lab, and a set's element is checked against the set's keys without scanning its list.
Counted, never timed."""

from __future__ import annotations

import hashlib
import re
import sys

import pytest

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.plan import nft_table, nftables, services

HASHED = re.compile(r"(service|endpoint)-[A-Z2-7]{8}-")  # kube-proxy's hashed chain names


def _lab(n_svc: int = 12, n_ep: int = 3, n_nodes: int = 3):
    nodes = [{"name": f"node-{i}", "podCIDR": f"10.{100 + i}.0.0/20"} for i in range(n_nodes)]
    pods = [{"name": f"p{s}-{e}", "node": f"node-{e % n_nodes}", "labels": {"svc": f"s{s}"}}
            for s in range(n_svc) for e in range(n_ep)]
    svcs = [{"name": f"svc-{s}", "selector": {"svc": f"s{s}"}, "ports": [{"name": "http", "port": 80,
                                                                          "targetPort": 8080}]}
            for s in range(n_svc)]
    return resolve(Topology.model_validate({
        "name": "once", "cluster": {"podCIDR": "10.96.0.0/11", "serviceCIDR": "10.0.0.0/14", "nodeMask": 20,
                                    "kubeProxyMode": "nftables"},
        "nodes": nodes, "pods": pods, "services": svcs}))


@pytest.fixture
def counted(monkeypatch):
    """sha256 calls and prefix rewrites, counted; the caches emptied before and after."""
    seen = {"sha256": 0, "sub": 0}
    real_sha, real_prefix = hashlib.sha256, nft_table._PREFIX

    def sha256(data: bytes = b""):
        if sys._getframe(1).f_globals["__name__"] == nftables.__name__:  # the lab's own names hash too
            seen["sha256"] += 1
        return real_sha(data)

    class Prefix:
        def sub(self, repl, text):
            seen["sub"] += 1
            return real_prefix.sub(repl, text)

    monkeypatch.setattr(nftables.hashlib, "sha256", sha256)
    monkeypatch.setattr(nft_table, "_PREFIX", Prefix())
    _forget()
    yield seen
    _forget()


def _forget() -> None:
    for cached in (nftables.hash_and_truncate, nft_table.listed_rule):
        getattr(cached, "cache_clear", lambda: None)()


def test_each_chain_name_is_hashed_once_for_every_node(counted):
    lab = _lab()
    sps = services.service_ports(lab)
    tables = [nftables.kube_proxy_table(lab, node, sps) for node in lab.nodes]
    # a Service port's own name (its service-, external- and local- chains) and each endpoint's
    named = [c for t in tables for c in t.chains if HASHED.match(c)]
    names = {c.split("-", 1)[1] for c in named}
    assert len(names) > 12 * 4
    assert counted["sha256"] == len(names)
    assert len(named) == 3 * len(names)
    # kube-proxy's own name (proxier_test.go), from the first 5 bytes of the digest as from all 32
    assert nftables.hash_and_truncate("ns1/svc1/tcp/p80") == "ULMVA6XW-ns1/svc1/tcp/p80"


def test_each_rule_is_listed_once_for_every_node(counted):
    lab = _lab()
    sps = services.service_ports(lab)
    tables = [nftables.kube_proxy_table(lab, node, sps) for node in lab.nodes]
    listings = [t.listing() for t in tables]
    rules = {r for t in tables for rs in t.rules.values() for r in rs}
    # once per rule text, and in it once per stretch outside a comment's quotes
    assert counted["sub"] == sum(len(r.split('"')[::2]) for r in rules)
    assert len(rules) < sum(len(rs) for t in tables for rs in t.rules.values()) / 2
    assert listings[0] != listings[1]  # nodeport-ips: the node's own address
    assert [r for r in listings[0] if r.startswith("rule ")] == [r for r in listings[1] if r.startswith("rule ")]


def test_an_element_is_added_once_per_key_without_scanning_the_set():
    class Unscanned(list):
        def __contains__(self, item):
            raise AssertionError("the set's elements scanned one by one")

    t = nft_table.Table()
    t.set(nft_table.Set("cluster-ips", "ipv4_addr"))
    t.elements["cluster-ips"] = Unscanned()
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
        t.element("cluster-ips", ip)
    assert list(t.elements["cluster-ips"]) == ["10.0.0.1", "10.0.0.2"]
