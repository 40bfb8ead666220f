"""netlab break on Services (root): the catalogue's Services scenarios (kube-proxy's rules, the cluster DNS, a
stale conntrack entry) on the Services example, the node faults as each Service flow's path meets them (ClusterIP,
NodePort, the load balancer), the DNS scenarios beside a user's pod and Service that look like the cluster DNS, and
FORWARD's policy DROP in kube-proxy's nftables mode. Each scenario as breaking.py says.
"""

from __future__ import annotations

import json
import re

import pytest

from breaking import SERVICES, assert_repaired, break_and_repair, check_probe, probe, repair_here, shipped_lab
from helpers import in_netns, lab_up, netlab, unique_lab
from netlab.breaks import catalogue
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root

SERVICES_SCENARIOS = [s.name for s in catalogue.SCENARIOS if s.example]


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory):
    with shipped_lab(tmp_path_factory, SERVICES) as lab:
        yield lab


@pytest.fixture(scope="module")
def services_nft_lab(tmp_path_factory):
    with shipped_lab(tmp_path_factory, SERVICES, "cluster: {kubeProxyMode: nftables}\n") as lab:
        yield lab


@pytest.mark.parametrize("name", SERVICES_SCENARIOS)
def test_break_services_lab(services_lab, name):
    break_and_repair(*services_lab, name)


@pytest.mark.parametrize("name, target", [("ip-forward-off", "node-1"), ("forward-policy-drop", "node-1"),
                                          ("rp-filter-strict", "node-2"), ("vxlan-fdb-wrong-vtep", "node-2"),
                                          ("bridge-port-down", "web-2"), ("bridge-port-disabled", "web-2")])
def test_break_services_lab_by_a_node_fault(services_lab, name, target):
    """A node's fault on the Services example: every Service flow (ClusterIP, NodePort, the load balancer) and
    every flow to the internet fails or passes as its packets' path meets the fault, endpoint by endpoint
    (symptoms.paths). The oracle said they all passed: nothing checked them. With a pod's port down, a probe run
    leaves no entry of its unanswered Service flows in any node: not even under the tuple a NodePort's or the
    balancer's masquerade gave one (a later run's connection given that port met it: a flake of this test)."""
    lab = services_lab[0]
    break_and_repair(*services_lab, name, target, also=(lambda model: _no_service_flow_left(lab, model)) if
                     name in ("bridge-port-down", "bridge-port-disabled") else None)


@pytest.fixture(scope="module")
def impostor_lab(tmp_path_factory):
    """The Services example with a user's pod labelled k8s-app: kube-dns (in default, listed first) and a user's
    Service of it serving 53/UDP (listed first): only the add-on's kube-system/kube-dns is the cluster DNS."""
    import yaml

    name = unique_lab("qc")
    topo = yaml.safe_load(open(SERVICES, encoding="utf-8"))
    topo["name"] = name
    topo["pods"].insert(0, {"name": "impostor", "node": "node-2", "labels": {"k8s-app": "kube-dns"}})
    topo["services"].insert(0, {"name": "resolver", "selector": {"k8s-app": "kube-dns"},
                                "ports": [{"port": 53, "protocol": "UDP", "targetPort": 8080}]})
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    path.write_text(yaml.safe_dump(topo, sort_keys=False))
    with lab_up(str(path), name, in_process=True):
        yield name, str(path)


@pytest.mark.parametrize("name", ["dns-pod-stopped", "conntrack-stale-entry"])
def test_dns_scenarios_take_the_cluster_dns_pod_not_a_pod_with_its_label(impostor_lab, name):
    """dns-pod-stopped stops kube-system/kube-dns, so cluster DNS fails as predicted (it stopped the user's pod,
    the first labelled k8s-app: kube-dns, and cluster DNS went on answering), and conntrack-stale-entry's entry
    is for the cluster DNS ClusterIP (it took the first Service serving 53/UDP, the user's)."""
    break_and_repair(*impostor_lab, name)


SYN_SENT = re.compile(r"SYN_SENT src=(\S+) dst=\S+ sport=(\d+) dport=\d+")


def _no_service_flow_left(lab: str, model) -> None:
    """A probe run's unanswered connections left on the nodes (conntrack -L, SYN_SENT) are its plain pod-to-pod
    ones only (the agent deletes only what a Service's flows left)."""
    spaces = [n.netns for n in model.nodes]

    def half_open() -> set[tuple[str, str, str]]:
        return {(ns, *m.groups()) for ns in spaces for m in map(SYN_SENT.search, in_netns(
            ns, "conntrack", "-L", "-p", "tcp", check=True).stdout.splitlines()) if m}

    before = half_open()
    rc, report = probe(lab)
    plain = {tuple(r["local_address"].rsplit(":", 1)) for r in report["probes"]
             if r.get("service") is None and r["protocol"] == "tcp" and r["local_address"]}
    left = sorted(e for e in half_open() - before if e[1:] not in plain)
    assert rc == 1 and report["conntrack"]["unanswered_service_flows_deleted"] > 0 and not left, left


def test_forward_policy_drop_in_nftables_mode_drops_what_iptables_mode_accepts(services_nft_lab):
    """FORWARD's policy DROP (Docker's) on a node whose kube-proxy is in nftables mode: a pod's ClusterIP
    connection DNATed back to itself and what reaches the node's NodePorts are dropped too (kube-proxy's table is
    not iptables' filter table: there is no KUBE-FORWARD to accept what is marked for masquerade), and the trace
    of each says so, at the node, though the node holds no conntrack entry of the packet (it said "it was not
    DNATed here", and for the NodePort that the node itself got it and sent no reply)."""
    lab, path = services_nft_lab
    name = "forward-policy-drop"
    s = catalogue.scenario(name)
    model = running_lab(lab).resolved()
    target = catalogue.resolve_target(s, model, "node-1")
    try:
        netlab("break", name, "--lab", lab, "--target", "node-1")
        check_probe(lab, name, s, model, target)
        for src, dst, port in (("kube-dns", "svc/kube-dns", "53"), ("example", "node-1", "30080")):
            tr = netlab("trace", "--lab", lab, src, dst, "--proto", "tcp", "--port", port, "-o", "json", check=False)
            lost = json.loads(tr.stdout)["lost"]
            assert tr.returncode == 1 and lost["netns"] == f"{lab}-node-1", tr.stdout
            assert "no conntrack entry for this packet: it was dropped before conntrack kept one; the FORWARD " \
                   "chain's policy is DROP" in lost["reason"] and "it went on" not in lost["reason"], lost
            assert lost["fix"] == (f"ip netns exec {lab}-node-1 iptables -P FORWARD ACCEPT && ip netns exec "
                                   f"{lab}-node-1 iptables -A FORWARD -m comment --comment \"flanneld forward\" "
                                   "-j FLANNEL-FWD"), lost  # the break deleted Flannel's jump too
    finally:
        repaired = repair_here(path)
    assert_repaired(repaired)
    assert probe(lab)[0] == 0
