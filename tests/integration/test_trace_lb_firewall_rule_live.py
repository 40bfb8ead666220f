"""trace quotes kube-proxy's loadBalancerSourceRanges firewall as the kernel holds it, not the topology's list
(root; iptables and nftables modes).

Three ranges, one of them holding the node's address (192.168.122.0/24) and one inside another (203.0.113.10/32 in
203.0.113.8/30): kube-proxy lets the balancer's own IP through too (iptables: one more ``-s 203.0.113.100/32``
rule in KUBE-FW-<hash>; nftables: one more element of the ``ip saddr != { ... } drop`` set), and nft merges and
sorts the set, listing ``{ 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 }``. trace's explanation of a dropped
outside host quoted the topology's ranges in both modes (qa58k #2).
"""

from __future__ import annotations

import re

import pytest

from helpers import in_netns, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: lb
    selector: {{app: web}}
    type: LoadBalancer
    loadBalancerIP: 203.0.113.100
    loadBalancerSourceRanges: [203.0.113.10/32, 192.168.122.0/24, 203.0.113.8/30]
    ports: [{{port: 80, targetPort: 8080}}]
internet:
  cidr: 203.0.113.0/24
  gateway: {{ip: 203.0.113.1}}
  hosts: [{{name: outside, ip: 203.0.113.50}}]
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_firewalls_explanation_quotes_the_kernels_rules(tmp_path, mode):
    lab = unique_lab("trf")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, mode=mode), f"{lab}.yaml")
    with lab_up(path, lab):
        n1 = f"{lab}-n1"
        rc, d = traced(lab, "outside", "svc/lb", "--port", "80")
        assert rc == 1 and d["lost"] is not None and d["lost"]["netns"] == n1, d["lost"]
        reason = d["lost"]["reason"]
        assert "loadBalancerSourceRanges" in reason, reason
        if mode == "nftables":
            listed = in_netns(n1, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
            held = [line.strip() for line in listed.splitlines() if line.strip().startswith("ip saddr != {")]
            assert held == ["ip saddr != { 192.168.122.0/24, 203.0.113.8/30, 203.0.113.100 } drop"], held
            assert f"'{held[0]}' drops it" in reason, reason
        else:
            saved = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
            sources = [m.group(1) for m in re.finditer(r"^-A KUBE-FW-\S+ -s (\S+) .*-j KUBE-EXT-", saved, re.M)]
            assert sources == ["203.0.113.10/32", "192.168.122.0/24", "203.0.113.8/30", "203.0.113.100/32"], saved
            assert f"passes only {', '.join(sources)} on to KUBE-EXT-" in reason, reason
