"""A pod isolated for egress reaches its own node only as its egress rules allow (plan/policy.py, INPUT).

A pod's packet to one of its own node's addresses (eth0's node IP, cni0's gateway, flannel.1's) is not
forwarded: it goes up to the node through INPUT. With the policy chains hooked into FORWARD alone, such a pod
pinged its own node while every other node and pod refused it, and ``probe`` said "expected unreachable, got a
reply". Kubernetes' "traffic from the pod's own node is always allowed" is about the pod's ingress; kube-router,
Calico and Cilium judge a pod's egress to its own host too. Checked here with the kernel's view
(``iptables-save``), real packets, probe, status, up and trace; and what must not change: DNS through the
cluster DNS Service, hairpin Service traffic, the node's own traffic to the pod and the pod's replies to it.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import netlab, probe_failures
from netlab.api.topology import load
from netlab.kernel.iptables import save as iptables_save
from netlab.model.netpol import policy_set
from netlab.plan.policy import pod_chain
from netlab.realize.netfilter import parse_save

pytestmark = pytest.mark.root

JUMP = '-A INPUT -m comment --comment "netlab network policies" -j NETPOL-INPUT'

# a1 (n1) is isolated both ways: egress to the cluster DNS (53) and to pods on 8080 (its own Service's hairpin
# included), ingress from itself only. b1 beside it and b2 on n2 are isolated by nothing.
POLICY = {"name": "one", "spec": {
    "podSelector": {"matchLabels": {"app": "one"}}, "policyTypes": ["Ingress", "Egress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "one"}}}]}],
    "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
               {"to": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}]}}


def topology(name: str, policies: list[dict], expect: list[dict] | None = None) -> dict:
    return {
        "name": name, "nodes": [{"name": "n1"}, {"name": "n2"}],
        "pods": [{"name": "a1", "node": "n1", "labels": {"app": "one"}},
                 {"name": "b1", "node": "n1", "labels": {"app": "two"}},
                 {"name": "b2", "node": "n2", "labels": {"app": "two"}}],
        "services": [{"name": "self", "selector": {"app": "one"}, "ports": [{"port": 80, "targetPort": 8080}]}],
        "networkPolicies": policies,
        **({"expect": expect} if expect else {}),
    }


def node_addresses(name: str) -> list[str]:
    """n1's own addresses: eth0's node IP, cni0's gateway, flannel.1's."""
    n1 = load(topology(name, [])).lab.node("n1")
    return [str(n1.ip), str(n1.gateway.ip), str(n1.vtep_ip)]


def ping(lab: str, pod: str, addr: str) -> str:
    """'reply', or 'refused' (an ICMP error came back: the REJECT), or 'silence'."""
    proc = subprocess.run(["ip", "netns", "exec", f"{lab}-{pod}", "ping", "-n", "-c1", "-W1", addr],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        return "reply"
    return "refused" if "Unreachable" in proc.stdout else "silence"


def rejected(netns: str, chain: str) -> int:
    """Packets the REJECT rules of one chain counted (the kernel's counters)."""
    out = 0
    for line in iptables_save(netns, "filter", counters=True).splitlines():
        m = re.match(rf"^\[(\d+):\d+\] -A {chain} .*-j REJECT", line)
        out += int(m.group(1)) if m else 0
    return out


def test_pod_egress_to_its_own_node_is_judged_in_input(labs):
    name = labs.name("hc")
    expect = [{"from": "a1", "to": "n1", "proto": "icmp", "reach": False},
              {"from": "a1", "to": "n2", "proto": "icmp", "reach": False},
              {"from": "b1", "to": "n1", "proto": "icmp", "reach": True}]
    labs.up(json.dumps(topology(name, [POLICY], expect)))
    n1, n2 = f"{name}-n1", f"{name}-n2"
    lab = load(topology(name, [POLICY])).lab
    chain = pod_chain("egress", policy_set(lab).pod("a1"))
    # The kernel's view: INPUT jumps first to NETPOL-INPUT, which sends a1's new flows to a1's egress chain.
    tab = parse_save(iptables_save(n1, "filter"), "filter")
    assert tab.of("INPUT")[0] == JUMP, tab.of("INPUT")
    a1_ip = str(lab.pod("a1").ip)
    assert tab.of("NETPOL-INPUT") == [
        "-A NETPOL-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        f'-A NETPOL-INPUT -s {a1_ip}/32 -m comment --comment "default/a1 egress to this node" -j {chain}']
    assert not [c for c in parse_save(iptables_save(n2, "filter"), "filter").chains if c.startswith("NETPOL-")]
    # Real packets: each of n1's addresses refuses a1 (its egress chain's REJECT counts them), answers b1.
    before = rejected(n1, chain)
    addrs = node_addresses(name)
    assert {a: ping(name, "a1", a) for a in addrs} == {a: "refused" for a in addrs}
    assert rejected(n1, chain) - before == len(addrs)
    assert {a: ping(name, "b1", a) for a in addrs} == {a: "reply" for a in addrs}
    # probe: the expect entries hold; n1's own pings and connections to a1 get their replies (ESTABLISHED in
    # INPUT), the hairpin through svc/self and DNS to the cluster DNS go through FORWARD and are allowed.
    proc = netlab("probe", "--lab", name, "-o", "json", check=False)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(data)
    got = {(p["source"], p["destination"], p["protocol"], p["port"]): p["observed"] == "reachable"
           for p in data["probes"]}
    assert not got[("a1", "n1", "icmp", None)] and got[("b1", "n1", "icmp", None)]
    assert got[("n1", "a1", "icmp", None)] and got[("n1", "a1", "tcp", 8080)] and not got[("n2", "a1", "icmp", None)]
    [hairpin] = [p for p in data["probes"] if p["source"] == "a1" and (p.get("service") or {}).get("name") == "self"]
    assert hairpin["observed"] == "reachable" and hairpin["answered_by"] == "a1", hairpin
    dns = netlab("exec", "--lab", name, "a1", "--", "getent", "hosts", "self.default.svc.cluster.local", check=False)
    assert dns.returncode == 0 and dns.stdout.split()[0] == "10.96.0.11", dns
    # trace names the policy, and where: the pod's egress chain, jumped to from INPUT.
    proc = netlab("trace", "--lab", name, "a1", "n1", "-o", "json", check=False)
    traced = json.loads(proc.stdout)
    assert proc.returncode == 1 and not traced["delivered"], traced["lost"]
    assert traced["lost"]["reason"] == (
        f"dropped in node n1, chain {chain}, from INPUT (the packet is for n1 itself), by policy default/one (no "
        "egress rule allows it for pod default/a1); the kernel's REJECT rule there counted it"), traced["lost"]
    assert traced["lost"]["netns"] == n1 and traced["reply_hops"] == []


def test_ipblock_allows_the_node_and_status_up_and_removal_keep_input_right(labs):
    name = labs.name("hc")
    node_ip, gateway, _ = node_addresses(name)
    allow = {**POLICY, "spec": {**POLICY["spec"], "egress": POLICY["spec"]["egress"] + [
        {"to": [{"ipBlock": {"cidr": f"{node_ip}/32"}}]}]}}
    path, _ = labs.up(json.dumps(topology(name, [allow], [{"from": "a1", "to": "n1", "proto": "icmp",
                                                           "reach": True}])))
    n1 = f"{name}-n1"
    # The same allow rules as FORWARD's: the ipBlock holds the node IP, not cni0's address.
    assert (ping(name, "a1", node_ip), ping(name, "a1", gateway)) == ("reply", "refused")
    proc = netlab("probe", "--lab", name, "-o", "json", check=False)
    assert proc.returncode == 0, probe_failures(json.loads(proc.stdout))
    assert netlab("status", "--lab", name, check=False).returncode == 0
    # A jump taken out by hand: status names it, the hole is real, up puts it back.
    subprocess.run(["ip", "netns", "exec", n1, "iptables", "-t", "filter", "-D", "INPUT", "-m", "comment",
                    "--comment", "netlab network policies", "-j", "NETPOL-INPUT"], check=True)
    assert ping(name, "a1", gateway) == "reply"
    status = netlab("status", "--lab", name, check=False)
    assert status.returncode == 1 and f"missing rule: {JUMP}" in status.stdout, status.stdout
    netlab("up", "-t", path)
    assert netlab("status", "--lab", name, check=False).returncode == 0
    assert parse_save(iptables_save(n1, "filter"), "filter").of("INPUT")[0] == JUMP
    assert ping(name, "a1", gateway) == "refused"
    # No policy left: neither the chain nor the jump, and a1 reaches its node again.
    labs.up(json.dumps(topology(name, [])))
    tab = parse_save(iptables_save(n1, "filter"), "filter")
    assert "NETPOL-INPUT" not in tab.chains and not [r for r in tab.of("INPUT") if "NETPOL" in r]
    assert ping(name, "a1", gateway) == "reply"
    assert netlab("status", "--lab", name, check=False).returncode == 0


def test_a_node_as_a_destination_is_judged_at_the_address_the_packet_goes_to(labs):
    """a1's egress allows n2's node IP only (an ipBlock), then n2's flannel.1 address only. The kernel matches
    the address the packet goes to (`-d` in n1's FORWARD): a ping to n2's node IP gets through with the first
    policy and is refused with the second, and a ping to flannel.1's address the other way round. probe's
    evaluator judged a node destination by flannel.1's address (the one a node sends from), so it expected the
    opposite for the node IP; trace, which judges the address traced to, says what the kernel does."""
    from netlab.probe.matrix import Endpoint, endpoints
    from netlab.probe.policy import policy_judge

    name = labs.name("qt")
    probe_lab = load(topology(name, [])).lab
    n2 = probe_lab.node("n2")
    for block in (n2.ip, n2.vtep_ip):
        egress = {"name": "one", "spec": {"podSelector": {"matchLabels": {"app": "one"}}, "policyTypes": ["Egress"],
                                          "egress": [{"to": [{"ipBlock": {"cidr": f"{block}/32"}}]}]}}
        labs.up(json.dumps(topology(name, [egress])))
        lab = load(topology(name, [egress])).lab
        judge = policy_judge(lab)
        assert judge is not None
        eps = endpoints(lab)
        for addr in (n2.ip, n2.vtep_ip):
            real = ping(name, "a1", str(addr))  # the kernel
            expected, why = judge(eps["a1"], Endpoint("n2", "node", f"{name}-n2", addr, node="n2"), "icmp", None)
            assert real == ("reply" if addr == block else "refused"), (block, addr, real)
            assert expected is (real == "reply"), (block, addr, why)
        assert judge(eps["a1"], eps["n2"], "icmp", None)[0] is (block == n2.ip)  # the probe's node: its IP
        for target in ("n2", str(n2.vtep_ip)):
            proc = netlab("trace", "--lab", name, "a1", target, "-o", "json", check=False)
            traced = json.loads(proc.stdout)
            ok = (target == "n2") == (block == n2.ip)
            assert traced["delivered"] is ok and traced["policy"][0]["allowed"] is ok, traced["policy"]
