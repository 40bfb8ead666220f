"""spec.loadBalancerSourceRanges: validated as the API server does, written as kube-proxy writes it in both modes,
and applied by the lab's balancer as a cloud's applies it (no root).

The rule texts are kubernetes ``pkg/proxy/iptables/proxier_test.go`` ``TestOverallIPTablesRules``'s Service
ns5/svc5 (LoadBalancer 5.6.7.8, loadBalancerSourceRanges [203.0.113.0/25], endpoint 10.180.0.3) and
``pkg/proxy/nftables/proxier_test.go`` ``TestOverallNFTablesRules``'s same Service: the same addresses, chain
names and comments (its nodePort 3002 is netlab's 30002: a lab keeps to the API server's range).
"""

from __future__ import annotations

import pytest
import yaml

from netlab.errors import TopologyError
from netlab.model.load import parse_yaml, validate_source
from netlab.plan import internet, nft_table, nftables, services
from test_services_plan import lab_of

KUBE = yaml.safe_load("""
name: kp
cluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.30.0.0/16, nodeMask: 16}
nodes: [{name: n1, podCIDR: 10.0.0.0/16}, {name: n2, podCIDR: 10.180.0.0/16}]
internet: {cidr: 5.6.7.0/24, gateway: {ip: 5.6.7.1}, hosts: [{name: client, ip: 5.6.7.9}]}
pods: [{name: ep, namespace: ns5, node: n2, ip: 10.180.0.3, labels: {app: svc5}}]
services:
  - name: svc5
    namespace: ns5
    type: LoadBalancer
    clusterIP: 172.30.0.45
    loadBalancerIP: 5.6.7.8
    loadBalancerSourceRanges: [203.0.113.0/25]
    selector: {app: svc5}
    ports: [{name: p80, port: 80, nodePort: 30002}]
""")


def lab(mode: str = "iptables", ranges: list | None = None):
    svc = {**KUBE["services"][0], **({"loadBalancerSourceRanges": ranges} if ranges is not None else {})}
    return lab_of({**KUBE, "services": [svc], "cluster": {**KUBE["cluster"], "kubeProxyMode": mode}})


def iptables(lb, node: str = "n1") -> tuple[list[str], list[str]]:
    sps = services.service_ports(lb)
    return (services.kube_nat(lb, sps, node=node).payload("nat").splitlines(),
            services.node_filter(lb, sps, node=node).payload("filter").splitlines())


def test_iptables_kube_proxys_own_lines():
    nat, filt = iptables(lab())
    for line in (
        '-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 '
        '-j KUBE-FW-NUKIZ6OKUXPJNT4C',
        '-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 '
        '-j KUBE-EXT-NUKIZ6OKUXPJNT4C',
        '-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by '
        'KUBE-PROXY-FIREWALL"',
        '-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external '
        'destinations" -j KUBE-MARK-MASQ',
    ):
        assert line in nat, line
    assert [line for line in nat if line.startswith("-A KUBE-FW-")][-1].endswith("KUBE-PROXY-FIREWALL\"")
    assert ('-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by '
            'KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP') in filt


def test_a_range_holding_the_nodes_address_lets_the_balancers_own_ip_through():
    """kube-proxy's allowFromNode: a VIP-like balancer's traffic from the node loops back from the VIP."""
    lb = lab(ranges=["203.0.113.0/25", "192.168.122.2/32"])
    n1, _ = iptables(lb, "n1")
    n2, _ = iptables(lb, "n2")  # 192.168.122.3: not in a range
    fw = [line for line in n1 if line.startswith("-A KUBE-FW-")]
    assert [line.split(" -s ")[1].split()[0] for line in fw[:-1]] == ["203.0.113.0/25", "192.168.122.2/32",
                                                                       "5.6.7.8"]
    assert len([line for line in n2 if line.startswith("-A KUBE-FW-")]) == 3
    tx = nftables.kube_proxy_table(lb, lb.node("n1"), services.service_ports(lb)).transaction()
    assert ("add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25, "
            "192.168.122.2/32, 5.6.7.8 } drop") in tx


def test_nftables_kube_proxys_own_lines_and_the_kernels_listing():
    lb = lab("nftables")
    table = nftables.kube_proxy_table(lb, lb.node("n1"), services.service_ports(lb), mark="0x4000")
    fw = "firewall-HVFWP5L3-ns5/svc5/tcp/p80"
    for line in (
        f"add chain ip kube-proxy {fw}",
        f"add rule ip kube-proxy {fw} ip saddr != {{ 203.0.113.0/25 }} drop",
        f"add element ip kube-proxy firewall-ips {{ 5.6.7.8 . tcp . 80 : goto {fw} }}",
    ):
        assert line in table.transaction(), line
    # nft lists a one-element set as its value; several sorted, merged, a /32 as an address.
    assert nft_table.listed_rule("ip saddr != { 203.0.113.0/25 } drop") == "ip saddr != 203.0.113.0/25 drop"
    assert (nft_table.listed_rule("ip saddr != { 203.0.113.0/26, 10.244.0.9/32 } drop")
            == "ip saddr != { 10.244.0.9, 203.0.113.0/26 } drop")


def test_the_gateway_filters_nothing_the_nodes_kube_proxy_checks_the_ranges():
    """The gateway routes a LoadBalancer IP to the nodes as it is (a passthrough balancer): no filter rules of its
    own; the ranges are kube-proxy's to check, on the node, which sees the client's address."""
    assert not [r for r in internet.resources(lab()) if r.kind == "nat" and r.table == "filter"]


def test_the_api_servers_rules():
    svc = KUBE["services"][0]
    ok = lab(ranges=[" 203.0.113.7/24 "])  # space-padded, host bits: the API server takes it; kube-proxy masks
    assert [str(r) for r in ok.topo.services[0].load_balancer_source_ranges] == ["203.0.113.0/24"]
    for change, said in (({"type": "NodePort", "loadBalancerIP": None},
                          "services[0].loadBalancerSourceRanges: may only be used when type is LoadBalancer"),
                         ({"loadBalancerSourceRanges": ["203.0.113.0"]},
                          "services[0].loadBalancerSourceRanges[0]: '203.0.113.0' has no prefix length"),
                         ({"loadBalancerSourceRanges": ["nope/8"]},
                          "services[0].loadBalancerSourceRanges[0]: 'nope/8' is not an IPv4 CIDR")):
        data = {**svc, **change}
        data = {k: v for k, v in data.items() if v is not None}
        with pytest.raises(TopologyError) as err:
            validate_source(parse_yaml(yaml.safe_dump({**KUBE, "services": [data]}), "t.yaml"))
        assert str(err.value).startswith("t.yaml:") and said in str(err.value), str(err.value)


def test_adjacent_ranges_are_compared_as_the_one_span_nft_lists_them():
    """nft merges an interval set's adjacent ranges into one span, which it lists as first-last when it is no
    CIDR: two /25s across a /24 boundary were compared as the two CIDRs, so status called the chain drift. What
    nft 1.0 listed back for this set in a namespace of its own:
    ``{ 1.2.3.4/30, 10.0.0.128-10.0.1.127, 10.0.2.0-10.0.3.127, 10.9.0.0/24 }``."""
    written = ("ip saddr != { 10.0.0.128/25, 10.0.1.0/25, 10.9.0.0/25, 10.9.0.128/25, 1.2.3.4/32, 1.2.3.5/32, "
               "1.2.3.6/31, 10.0.2.0/24, 10.0.3.0/25 } drop")
    assert nft_table.listed_rule(written) == ("ip saddr != { 1.2.3.4/30, 10.0.0.128-10.0.1.127, 10.0.2.0-10.0.3.127, "
                                             "10.9.0.0/24 } drop")
    assert nft_table.listed_rule("ip saddr != { 10.0.0.128/25, 10.0.1.0/25 } drop") == \
        "ip saddr != { 10.0.0.128-10.0.1.127 } drop"
    assert nft_table.listed_rule("ip saddr != { 10.0.0.0/25, 10.0.0.128/25 } drop") == "ip saddr != { 10.0.0.0/24 } drop"


def test_a_lone_32_is_compared_as_the_address_nft_lists_back():
    """kube-proxy writes one range as a one-element set (``{ 203.0.113.10/32 }``, cidr.String()), which nft makes
    a plain comparison and lists as the bare address: status compared the /32 and called a fresh lab drifted, and
    every later up was rolled back (QA q4 #1). What nft 1.0.6 listed back, each in a namespace of its own."""
    lb = lab("nftables", ranges=["203.0.113.10/32"])
    table = nftables.kube_proxy_table(lb, lb.node("n1"), services.service_ports(lb), mark="0x4000")
    fw = "firewall-HVFWP5L3-ns5/svc5/tcp/p80"
    assert f"add rule ip kube-proxy {fw} ip saddr != {{ 203.0.113.10/32 }} drop" in table.transaction()
    assert f"rule {fw} 0000 ip saddr != 203.0.113.10 drop" in table.listing()
    for written, listed in (("ip saddr != { 203.0.113.7/24 } drop", "ip saddr != 203.0.113.0/24 drop"),
                            ("ip saddr != 203.0.113.10/32 drop", "ip saddr != 203.0.113.10 drop"),
                            ("ip saddr != 203.0.113.9/30 drop", "ip saddr != 203.0.113.8/30 drop"),
                            ("ip saddr != { 0.0.0.0/0 } drop", "ip saddr != 0.0.0.0/0 drop"),
                            ("ip saddr != { 203.0.113.10/32, 203.0.113.10/32 } drop",
                             "ip saddr != { 203.0.113.10 } drop"),
                            ("ip saddr != { 203.0.113.7/24, 10.0.0.1 } drop",
                             "ip saddr != { 10.0.0.1, 203.0.113.0/24 } drop"),
                            ('ip daddr { 10.96.0.0/12 } drop comment "a/32 1.2.3.4/32"',
                             'ip daddr 10.96.0.0/12 drop comment "a/32 1.2.3.4/32"')):
        assert nft_table.listed_rule(written) == listed, written
