"""Two adjacent loadBalancerSourceRanges that nft merges into a span that is no CIDR (root, nftables mode).

kube-proxy's firewall chain holds ``ip saddr != { 10.0.0.128/25, 10.0.1.0/25 } drop``; the kernel keeps the
interval set merged and nft lists it back as ``{ 10.0.0.128-10.0.1.127 }``. status compared it with the two
CIDRs and called every node's chain drift; it now merges the planned ranges as nft does: clean after up.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: nftables}}
nodes: [{{name: n1}}]
internet:
  hosts: [{{name: client, ip: 203.0.113.50}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
services:
  - name: web
    type: LoadBalancer
    selector: {{app: web}}
    loadBalancerSourceRanges: [10.0.1.0/25, 10.0.0.128/25]
    ports: [{{port: 80, targetPort: 8080}}]
"""


def test_status_is_clean_with_two_adjacent_ranges_nft_lists_as_one_span(tmp_path):
    name = unique_lab("ez")
    path = write_topology(tmp_path, TOPO.format(name=name))
    with lab_up(path, name):
        table = json.loads(in_netns(f"{name}-n1", "nft", "-j", "list", "table", "ip", "kube-proxy",
                                    check=True).stdout)["nftables"]
        rights = [e["match"]["right"] for o in table if "rule" in o and o["rule"]["chain"].startswith("firewall-")
                  for e in o["rule"]["expr"] if "match" in e]
        assert rights == [{"set": [{"range": ["10.0.0.128", "10.0.1.127"]}]}], rights
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 0, (st.stdout, st.stderr)
