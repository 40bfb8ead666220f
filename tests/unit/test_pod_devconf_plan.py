"""A pod starts with its node's IPv4 all/default settings (no root): on a real node the runtime makes the pod's
namespace there, and a new namespace copies init_net's (the node's) all/default devconf, so a real pod has
ip_forward=1 and, in kube-proxy's iptables mode, all.route_localnet=1. The plan gives each pod its node's values;
internet hosts and the underlay, machines of their own, keep ip_forward=0."""

from __future__ import annotations

import pytest
import yaml
from fake_lab import make_lab, status, up

from netlab.kernel.fake import FakeKernel
from netlab.plan.build import build_plan
from netlab.plan.sysctls import copied_by_new_netns
from test_services_plan import TOPO, lab_of

lab = pytest.fixture(make_lab, name="lab")


def copied(plan, netns: str) -> dict[str, str]:
    return {r.name: r.value for r in plan.of_kind("sysctl") if r.netns == netns and copied_by_new_netns(r.name)}


@pytest.mark.parametrize("mode, localnet", [("iptables", "1"), ("nftables", "0")])
def test_each_pod_plans_its_nodes_all_and_default_settings(mode, localnet):
    data = yaml.safe_load(TOPO.read_text())  # Services, internet hosts, a load balancer
    data["cluster"] = {**data.get("cluster", {}), "kubeProxyMode": mode}
    lab = lab_of(data)
    plan = build_plan(lab)
    for pod in lab.pods:
        mine, nodes = copied(plan, pod.netns), copied(plan, lab.node(pod.node).netns)
        assert mine == nodes, (pod.name, set(mine.items()) ^ set(nodes.items()))
        assert mine["net.ipv4.ip_forward"] == "1" and mine["net.ipv4.conf.all.route_localnet"] == localnet
    hosts = set(plan.netns) - {p.netns for p in lab.pods} - {n.netns for n in lab.nodes}
    forwarding = {ns: copied(plan, ns).get("net.ipv4.ip_forward") for ns in hosts}
    assert forwarding[lab.underlay_netns] == "0" and "0" in forwarding.values() and "1" in forwarding.values()


def test_copied_by_new_netns_is_all_and_default_and_ip_forward():
    assert copied_by_new_netns("net.ipv4.ip_forward")
    assert copied_by_new_netns("net.ipv4.conf.all.route_localnet")
    assert copied_by_new_netns("net.ipv4.conf.default.arp_ignore")
    assert not copied_by_new_netns("net.ipv4.conf.eth0.arp_notify")
    assert not copied_by_new_netns("net.ipv4.conf.flannel.1.rp_filter")
    assert not copied_by_new_netns("net.bridge.bridge-nf-call-iptables")
    assert not copied_by_new_netns("net.netfilter.nf_conntrack_tcp_timeout_established")


def test_a_pod_made_with_the_machines_ip_forward_is_drift_that_up_converges(lab):
    """A running lab whose pods were made before (ip_forward=0, the machine's): status names each, one up
    writes the node's value."""
    k = FakeKernel()
    up(lab, k)
    assert status(lab, k).ok and all(k.ns[p.netns].sysctls["net.ipv4.ip_forward"] == "1" for p in lab.pods)
    for pod in lab.pods:
        k.ns[pod.netns].sysctls["net.ipv4.ip_forward"] = "0"
        k.ns[pod.netns].sysctls["net.ipv4.conf.all.route_localnet"] = "0"
    assert status(lab, k).drift == [f"different: sysctl {key} in {p.netns} (is 0, want 1)" for p in lab.pods
                                    for key in ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet")]
    up(lab, k)
    assert status(lab, k).ok and all(k.ns[p.netns].sysctls["net.ipv4.ip_forward"] == "1" for p in lab.pods)
