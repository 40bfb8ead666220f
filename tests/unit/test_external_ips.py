"""spec.externalIPs: validated as the API server does, written as kube-proxy writes it in both modes, routed by
the lab's internet gateway to a node, shown by `get services` as kubectl shows it (no root).

The rule texts are kubernetes ``pkg/proxy/iptables/proxier_test.go`` ``TestOverallIPTablesRules``'s Service
ns4/svc4 (ClusterIP 172.30.0.44, externalIPs [192.168.99.33], endpoints 10.180.0.4 and 10.180.0.5), and
``pkg/proxy/nftables/proxier_test.go`` ``TestOverallNFTablesRules``'s same Service: the same addresses, chain
names and comments.
"""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
import yaml

from netlab.errors import TopologyError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.plan import internet, nftables, services
from test_services_plan import lab_of

KUBE = yaml.safe_load("""
name: kp
cluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.30.0.0/16, nodeMask: 16}
nodes: [{name: n1, podCIDR: 10.0.0.0/16}, {name: n2, podCIDR: 10.180.0.0/16}]
internet: {cidr: 1.2.3.0/24, gateway: {ip: 1.2.3.1}, hosts: [{name: client, ip: 1.2.3.9}]}
pods:
  - {name: ep4, namespace: ns4, node: n2, ip: 10.180.0.4, labels: {app: svc4}}
  - {name: ep5, namespace: ns4, node: n2, ip: 10.180.0.5, labels: {app: svc4}}
services:
  - name: svc4
    namespace: ns4
    clusterIP: 172.30.0.44
    externalIPs: [192.168.99.33]
    selector: {app: svc4}
    ports: [{name: p80, port: 80}]
  - name: none
    namespace: ns4
    externalIPs: [192.168.99.44]
    selector: {app: nothing}
    ports: [{name: p80, port: 80}]
""")


def lab(mode: str = "iptables", topo: dict = KUBE):
    return lab_of({**topo, "cluster": {**topo.get("cluster", {}), "kubeProxyMode": mode}})


def test_iptables_kube_proxys_own_lines():
    lb = lab()
    sps = services.service_ports(lb)
    nat = services.kube_nat(lb, sps, masq_mark="0x4000", node="n1").payload("n1 nat").splitlines()
    filt = services.node_filter(lb, sps, masq_mark="0x4000", node="n1").payload("n1 filter").splitlines()
    for line in (
        '-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 '
        '-j KUBE-SVC-4SW47YFZTEDKD3PK',
        '-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 '
        '--dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK',
        '-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external '
        'destinations" -j KUBE-MARK-MASQ',
        '-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK',
        '-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode '
        'random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC',
        '-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" '
        '-j KUBE-SEP-C6EBXVWJJZMIWKLZ',
    ):
        assert line in nat, line
    svc4 = [line for line in nat if "ns4/svc4:p80" in line and line.startswith("-A KUBE-SERVICES")]
    assert [line.split('"')[1] for line in svc4] == ["ns4/svc4:p80 cluster IP", "ns4/svc4:p80 external IP"]
    # No endpoints: its external IP is refused in KUBE-EXTERNAL-SERVICES, and the nat table has nothing of it.
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns4/none:p80 has no endpoints" -m tcp -p tcp '
            "-d 192.168.99.44 --dport 80 -j REJECT") in filt
    assert "192.168.99.44" not in "\n".join(nat)
    assert "192.168.99.33" not in "\n".join(filt)


def test_nftables_kube_proxys_own_lines():
    lb = lab("nftables")
    tx = nftables.kube_proxy_table(lb, lb.node("n1"), services.service_ports(lb), mark="0x4000").transaction()
    ext, svc = "external-LAUZTJTB-ns4/svc4/tcp/p80", "service-LAUZTJTB-ns4/svc4/tcp/p80"
    lines = tx
    for line in (
        f"add chain ip kube-proxy {ext}",
        f"add rule ip kube-proxy {ext} jump mark-for-masquerade",
        f"add rule ip kube-proxy {ext} goto {svc}",
        f"add element ip kube-proxy service-ips {{ 172.30.0.44 . tcp . 80 : goto {svc} }}",
        f"add element ip kube-proxy service-ips {{ 192.168.99.33 . tcp . 80 : goto {ext} }}",
        'add element ip kube-proxy no-endpoint-services { 192.168.99.44 . tcp . 80 comment "ns4/none:p80" : '
        "goto reject-chain }",
    ):
        assert line in lines, line


def test_external_traffic_policy_local_on_a_cluster_ip_service_with_external_ips():
    """The API server's ExternallyAccessible: externalIPs make a ClusterIP Service take outside traffic, so
    externalTrafficPolicy Local is allowed and kube-proxy writes the Local external chain; n1 has no endpoint."""
    topo = {**KUBE, "services": [{**KUBE["services"][0], "externalTrafficPolicy": "Local"}]}
    lb = lab(topo=topo)
    sps = services.service_ports(lb)
    nat = services.kube_nat(lb, sps, node="n1").payload("n1 nat").splitlines()
    filt = services.node_filter(lb, sps, node="n1").payload("n1 filter").splitlines()
    assert ('-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "pod traffic for ns4/svc4:p80 external '
            'destinations" -s 10.0.0.0/8 -j KUBE-SVC-4SW47YFZTEDKD3PK') in nat
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns4/svc4:p80 has no local endpoints" -m tcp -p tcp '
            "-d 192.168.99.33 --dport 80 -j DROP") in filt
    n2 = services.kube_nat(lb, sps, node="n2").payload("n2 nat").splitlines()
    assert "-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVL-4SW47YFZTEDKD3PK" in n2


def test_the_gateway_routes_each_external_ip_to_the_first_node():
    lb = lab()
    routes = [r for r in internet.resources(lb) if r.kind == "route" and r.netns == "kp-gateway"]
    assert [(r.dst, str(r.gateway)) for r in routes] == [(IPv4Network("192.168.99.33/32"), str(lb.nodes[0].ip)),
                                                         (IPv4Network("192.168.99.44/32"), str(lb.nodes[0].ip))]


def test_get_services_shows_them_as_kubectl_does():
    from netlab.api.views import services as views

    text = yaml.safe_dump({**KUBE, "services": KUBE["services"] + [
        {"name": "lb", "namespace": "ns4", "type": "LoadBalancer", "loadBalancerIP": "1.2.3.100",
         "externalIPs": ["192.168.99.55", "192.168.99.56"], "selector": {"app": "svc4"}, "ports": [{"port": 81}]}]})
    got = {s.name: s.external_ip for s in views(resolve(validate_source(parse_yaml(text, "t.yaml"))))}
    assert got["svc4"] == "192.168.99.33"
    assert got["lb"] == "1.2.3.100,192.168.99.55,192.168.99.56"


@pytest.mark.parametrize("ip, said", [
    ("0.0.0.0", "0.0.0.0 is the unspecified address, which the API server refuses for externalIPs"),
    ("127.0.0.5", "127.0.0.5 is a loopback address, which the API server refuses"),
    ("169.254.1.1", "169.254.1.1 is a link-local address, which the API server refuses"),
    ("224.0.0.9", "224.0.0.9 is a link-local address, which the API server refuses"),
    ("10.1.2.3", "10.1.2.3 is in cluster.podCIDR, a network of the lab itself"),
    ("172.30.9.9", "172.30.9.9 is in cluster.serviceCIDR, a network of the lab itself"),
    ("1.2.3.77", "1.2.3.77 is in internet.cidr, a network of the lab itself"),
    ("300.1.1.1", "'300.1.1.1' is not an IPv4 address"),
])
def test_the_api_servers_rules_and_the_labs_own(ip, said):
    svc = {**KUBE["services"][0], "externalIPs": ["192.168.99.33", ip]}
    text = yaml.safe_dump({**KUBE, "services": [svc]})
    with pytest.raises(TopologyError) as err:
        validate_source(parse_yaml(text, "t.yaml"))
    msg = str(err.value)
    assert msg.startswith("t.yaml:") and f"services[0].externalIPs[1]: {said}" in msg, msg
