"""Flannel's rules and files, each against the real source.

The rules: flannel-io/flannel ``e2e/rules.go`` (``iptablesPostroutingRules``,
``iptablesForwardRules``) prints what ``iptables -t nat -S`` / ``iptables -S
FORWARD`` show on a node of a Flannel cluster; FLANNEL_E2E_* below are its
templates, line for line, and each rule netlab plans is checked against its
line. The files: ``pkg/subnet/subnet.go`` ``WriteSubnetFile`` and
``Documentation/kube-flannel.yml``'s ``cni-conf.json``; the delegate config:
flannel-io/cni-plugin ``doCmdAdd``.
"""

from __future__ import annotations

import json

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import flannel, services
from netlab.plan.iptables import chain_of

from flannel_e2e import FLANNEL_E2E_FORWARD, FLANNEL_E2E_POSTROUTING

def default_lab():
    return resolve(load_topology(None))


def tables(lab, node):
    res = {r.table: r for r in services.resources(lab) if r.kind == "nat" and r.netns == node.netns}
    return res["nat"], res["filter"]


@pytest.mark.parametrize("i", range(len(FLANNEL_E2E_POSTROUTING)))
@pytest.mark.parametrize("node_name", ["minikube", "minikube-m02"])
def test_flannel_postrtg_rule_is_flannels(i, node_name):
    lab = default_lab()
    node = lab.node(node_name)
    nat, _ = tables(lab, node)
    mine = [r for r in nat.rules if "FLANNEL-POSTRTG" in r]
    want = FLANNEL_E2E_POSTROUTING[i].format(pod=node.pod_cidr, net=lab.topo.cluster.pod_cidr)
    assert mine[i] == want
    assert len(mine) == len(FLANNEL_E2E_POSTROUTING)  # the jump and six rules, nothing else


@pytest.mark.parametrize("i", range(len(FLANNEL_E2E_FORWARD)))
def test_forward_chain_and_flannel_fwd_are_flannels(i):
    lab = default_lab()
    _, filt = tables(lab, lab.nodes[0])
    mine = [r for r in filt.rules if chain_of(r) in ("FORWARD", "FLANNEL-FWD")]
    assert mine[i] == FLANNEL_E2E_FORWARD[i].format(net=lab.topo.cluster.pod_cidr)
    assert len(mine) == len(FLANNEL_E2E_FORWARD)


def test_flannel_rules_in_the_payload_are_written_as_flanneld_writes_them():
    """masqRules' Rulespec, joined: what flanneld hands iptables-restore (the same text here)."""
    lab = default_lab()
    nat, filt = tables(lab, lab.nodes[0])
    lines = nat.payload.splitlines()
    for want in FLANNEL_E2E_POSTROUTING[1:]:
        assert want.format(pod="10.244.0.0/24", net="10.244.0.0/16") in lines
    assert '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT' in filt.payload


def test_subnet_env_is_write_subnet_files():
    lab = default_lab()
    assert flannel.subnet_env(lab, lab.node("minikube-m02")) == (
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")


def test_conflist_is_kube_flannels_cni_conf():
    conf = json.loads(flannel.cni_conflist())
    assert conf == {"name": "cbr0", "cniVersion": "0.3.1", "plugins": [
        {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}


def test_delegate_config_is_what_flannels_cni_plugin_hands_bridge():
    lab = default_lab()
    assert flannel.delegate_config(lab, lab.node("minikube")) == {
        "name": "cbr0", "cniVersion": "0.3.1", "type": "bridge", "hairpinMode": True, "isDefaultGateway": True,
        "isGateway": True, "ipMasq": False, "mtu": 1450,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "10.244.0.0/16"}]},
    }
