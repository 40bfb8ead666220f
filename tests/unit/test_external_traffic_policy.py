"""externalTrafficPolicy: Local, as kube-proxy writes it in both modes, and as the API server validates and
allocates it (no root).

The rule texts of ``test_..._kube_proxys_own_lines`` are kubernetes ``pkg/proxy/iptables/proxier_test.go``
``TestOverallIPTablesRules``'s Service ns2/svc2 (LoadBalancer, Local, its one endpoint on another node), and
``pkg/proxy/nftables/proxier_test.go`` ``TestOverallNFTablesRules``'s same Service: the same addresses, chain
names and comments; only its nodePort 3001 and healthCheckNodePort 30000 are netlab's 30001 and 30000 (a lab
keeps to the API server's range 30000-32767).
"""

from __future__ import annotations

import pytest
import yaml

from netlab.plan import nftables, services
from test_services_plan import check_golden, lab_of

TOPO = yaml.safe_load("""
name: etp
nodes: [{name: n1}, {name: n2}, {name: n3}]
internet: {hosts: [{name: client, ip: 203.0.113.50}]}
pods:
  - {name: web-a, node: n1, labels: {app: web}}
  - {name: web-b, node: n1, labels: {app: web}}
  - {name: web-c, node: n2, labels: {app: web}}
services:
  - name: web
    type: LoadBalancer
    externalTrafficPolicy: Local
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
  - name: plain
    type: NodePort
    selector: {app: web}
    ports: [{port: 81, targetPort: 8080}]
""")

# kube-proxy's own test: the test node is n1 (10.0.0.0/24), the endpoint 10.180.0.2 is on n2.
KUBE = yaml.safe_load("""
name: kp
cluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.30.0.0/16, nodeMask: 16}
nodes: [{name: n1, podCIDR: 10.0.0.0/16}, {name: n2, podCIDR: 10.180.0.0/16}]
internet: {cidr: 1.2.3.0/24, gateway: {ip: 1.2.3.1}, hosts: [{name: client, ip: 1.2.3.9}]}
pods: [{name: ep, namespace: ns2, node: n2, ip: 10.180.0.2, labels: {app: svc2}}]
services:
  - name: svc2
    namespace: ns2
    type: LoadBalancer
    clusterIP: 172.30.0.42
    loadBalancerIP: 1.2.3.4
    externalTrafficPolicy: Local
    healthCheckNodePort: 30000
    selector: {app: svc2}
    ports: [{name: p80, port: 80, nodePort: 30001}]
""")


def lab(mode: str = "iptables", topo: dict = TOPO):
    return lab_of({**topo, "cluster": {**topo.get("cluster", {}), "kubeProxyMode": mode}})


def node_text(lb, node: str) -> str:
    sps = services.service_ports(lb)
    if lb.topo.cluster.kube_proxy_mode == "iptables":
        nat = services.kube_nat(lb, sps, node=node)
        filt = services.node_filter(lb, sps, node=node)
        return nat.payload(f"{node} nat") + filt.payload(f"{node} filter")
    return nftables.replace_payload(nftables.kube_proxy_table(lb, lb.node(node), sps), node)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_golden_each_node_sends_outside_traffic_to_its_own_endpoints_only(mode):
    lb = lab(mode)
    check_golden(f"external_traffic_local_{mode}.txt", "".join(node_text(lb, n.name) for n in lb.nodes))


def test_iptables_svl_holds_the_nodes_own_endpoints_and_the_node_without_one_drops():
    lb = lab()
    n1, n3 = node_text(lb, "n1"), node_text(lb, "n3")
    sp = next(sp for sp in services.service_ports(lb) if sp.svc.name == "web")
    svl = [line for line in n1.splitlines() if line.startswith(f"-A {sp.svl_chain} ")]
    assert [line.split('"')[1] for line in svl] == ["default/web -> 10.244.0.2:8080", "default/web -> 10.244.0.3:8080"]
    assert f"-A {sp.ext_chain} -j {sp.svl_chain}" in n1.splitlines()
    assert sp.svl_chain not in n3  # no endpoint there: no KUBE-SVL, and the filter table drops outside traffic
    np, lb_ip = sp.node_port, sp.lb_ip
    assert (f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web has no local endpoints" -m addrtype '
            f"--dst-type LOCAL -m tcp -p tcp --dport {np} -j DROP") in n3.splitlines()
    assert (f'-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web has no local endpoints" -m tcp -p tcp '
            f"-d {lb_ip} --dport 80 -j DROP") in n3.splitlines()
    assert "has no local endpoints" not in n1
    # The Cluster Service beside it keeps its masquerade and is the same everywhere.
    plain = next(sp for sp in services.service_ports(lb) if sp.svc.name == "plain")
    want = (f'-A {plain.ext_chain} -m comment --comment "masquerade traffic for default/plain external '
            f'destinations" -j KUBE-MARK-MASQ')
    assert want in n1.splitlines() and want in n3.splitlines()


def test_iptables_kube_proxys_own_lines():
    lb = lab(topo=KUBE)
    n1 = node_text(lb, "n1").splitlines()
    for line in (
        '-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 30001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 '
        '-j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 '
        '-j KUBE-EXT-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" '
        '-s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external '
        'destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external '
        'destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
        '-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 '
        '-j ACCEPT',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp '
        '-d 1.2.3.4 --dport 80 -j DROP',
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype '
        '--dst-type LOCAL -m tcp -p tcp --dport 30001 -j DROP',
    ):
        assert line in n1, line
    ext = [line for line in n1 if line.startswith("-A KUBE-EXT-GNZBNJ2PO5MGZ6GT ")]
    assert len(ext) == 3 and not any(line.startswith("-A KUBE-SVL-") for line in n1)  # no endpoint on n1


def test_nftables_kube_proxys_own_lines():
    lb = lab("nftables", KUBE)
    tx = nftables.kube_proxy_table(lb, lb.node("n1"), services.service_ports(lb), mark="0x4000").transaction()
    ext, svc = "external-42NFTM6N-ns2/svc2/tcp/p80", "service-42NFTM6N-ns2/svc2/tcp/p80"
    for line in (
        f'add rule ip kube-proxy {ext} ip saddr 10.0.0.0/8 goto {svc} comment "short-circuit pod traffic"',
        f'add rule ip kube-proxy {ext} fib saddr type local jump mark-for-masquerade comment "masquerade local '
        'traffic"',
        f'add rule ip kube-proxy {ext} fib saddr type local goto {svc} comment "short-circuit local traffic"',
        f"add element ip kube-proxy service-ips {{ 1.2.3.4 . tcp . 80 : goto {ext} }}",
        f"add element ip kube-proxy service-nodeports {{ tcp . 30001 : goto {ext} }}",
        'add element ip kube-proxy no-endpoint-nodeports { tcp . 30001 comment "ns2/svc2:p80" : drop }',
        'add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }',
    ):
        assert line in tx, line
    assert len([line for line in tx if f" {ext} " in line and line.startswith("add rule")]) == 3
    assert not any(" local-" in line for line in tx)
    on_n2 = nftables.kube_proxy_table(lb, lb.node("n2"), services.service_ports(lb)).transaction()
    local = "local-42NFTM6N-ns2/svc2/tcp/p80"
    assert f"add rule ip kube-proxy {ext} goto {local}" in on_n2
    assert (f"add rule ip kube-proxy {local} numgen random mod 1 vmap {{ 0 : goto "
            "endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }") in on_n2
    assert not any(": drop" in line for line in on_n2)


def test_health_check_node_port_is_allocated_for_a_local_load_balancer_only():
    ports, checks = lab().addressing.node_port, lab().addressing.health_check_port
    assert ports[("default", "web", 80, "TCP")] == 30000 and checks == {("default", "web"): 30001}
    assert ports[("default", "plain", 81, "TCP")] == 30002  # after web's health check, in file order
    (web,) = [sp for sp in services.service_ports(lab()) if sp.svc.name == "web"]
    assert web.health_check_node_port == 30001
    nodeport_local = {**TOPO, "services": [{**TOPO["services"][0], "type": "NodePort"}]}
    assert lab(topo=nodeport_local).addressing.health_check_port == {}  # the API server's NeedsHealthCheck


@pytest.mark.parametrize("change, field, message", [
    ({"externalTrafficPolicy": "local"}, "externalTrafficPolicy", "'local' is not allowed; use 'Cluster' or 'Local'"),
    ({"internalTrafficPolicy": "Node"}, "internalTrafficPolicy", "'Node' is not allowed; use 'Cluster' or 'Local'"),
    ({"type": "ClusterIP"}, "externalTrafficPolicy", "externalTrafficPolicy Local needs type NodePort or "
                                                     "LoadBalancer"),
    ({"type": "NodePort", "healthCheckNodePort": 31000}, "healthCheckNodePort",
     "healthCheckNodePort needs type LoadBalancer and externalTrafficPolicy Local"),
    ({"healthCheckNodePort": 30500, "ports": [{"port": 80, "nodePort": 30500}]}, "healthCheckNodePort",
     "healthCheckNodePort 30500 is already allocated to service default/web"),
])
def test_a_bad_policy_is_one_line_naming_the_field(tmp_path, change, field, message):
    from helpers import located_problems

    svc = {**TOPO["services"][0], **change}
    problems = located_problems(yaml.safe_dump({**TOPO, "services": [svc]}, sort_keys=False), tmp_path)
    assert len(problems) == 1, problems
    (_, where, text), = problems
    assert where == f"services[0].{field}" and text.startswith(message), problems


def test_get_services_shows_the_policy_and_the_health_check_node_port():
    from netlab.api import views
    from netlab.cli.get import rows_of

    infos = {s.name: s for s in views.services(lab())}
    assert (infos["web"].external_traffic_policy, infos["web"].health_check_node_port) == ("Local", 30001)
    assert (infos["plain"].external_traffic_policy, infos["plain"].health_check_node_port) == ("Cluster", None)
    headers, rows = rows_of("services", tuple(infos.values()), wide=True)
    column = {row[headers.index("name")]: row[headers.index("external-traffic-policy")] for row in rows}
    assert column == {"web": "Local (health check 30001/TCP)", "plain": "Cluster"}


ITP = {**TOPO, "pods": [*TOPO["pods"], {"name": "lone", "node": "n3"}], "services": [{"name": "web", "clusterIP": "10.96.0.50", "internalTrafficPolicy": "Local",
                             "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}]}


def test_internal_local_node_without_an_endpoint_drops_the_cluster_ip():
    lb = lab(topo=ITP)
    sps = services.service_ports(lb)
    (sp,) = sps
    n3 = node_text(lb, "n3").splitlines()
    # kube-proxy's TestInternalTrafficPolicyE2E, "... there are no local endpoints": the filter table's DROP
    assert ('-A KUBE-SERVICES -m comment --comment "default/web has no local endpoints" -m tcp -p tcp '
            "-d 10.96.0.50 --dport 80 -j DROP") in n3
    assert not any("10.96.0.50" in line for line in services.kube_nat(lb, sps, node="n3").payload("").splitlines()
                   if line.startswith("-A"))
    n1 = services.kube_nat(lb, sps, node="n1").payload("").splitlines()
    assert f'-A KUBE-SERVICES -m comment --comment "default/web cluster IP" -m tcp -p tcp -d 10.96.0.50 --dport 80 ' \
           f"-j {sp.svl_chain}" in n1
    assert not any(sp.svc_chain in line for line in n1)  # no Cluster policy chain at all (UsesClusterEndpoints)
    assert len([line for line in n1 if line.startswith("-A KUBE-SEP-") and "DNAT" in line]) == 2  # n1's own


def test_internal_local_in_nftables_mode():
    lb = lab("nftables", ITP)
    sps = services.service_ports(lb)
    (sp,) = sps
    n3 = nftables.kube_proxy_table(lb, lb.node("n3"), sps).transaction()
    assert 'add element ip kube-proxy no-endpoint-services { 10.96.0.50 . tcp . 80 comment "default/web" : drop }' in n3
    assert not any(line.startswith("add element ip kube-proxy service-ips { 10.96.0.50") for line in n3)
    n1 = nftables.kube_proxy_table(lb, lb.node("n1"), sps).transaction()
    local = nftables.local_chain(sp)
    assert f"add element ip kube-proxy service-ips {{ 10.96.0.50 . tcp . 80 : goto {local} }}" in n1
    assert f"add rule ip kube-proxy {local} ip daddr 10.96.0.50 ip saddr != 10.244.0.0/16 jump mark-for-masquerade" \
        in n1
    assert not any(nftables.service_chain(sp) in line for line in n1)


def test_probe_expects_the_cluster_ip_from_the_endpoints_node_only():
    from netlab.probe.services import build

    plan = build(lab(topo=ITP), ("tcp",))
    got = {p.source.name: (p.expected, [r.answerer for r in p.rules]) for p in plan.probes
           if p.svc is not None and p.svc.kind == "ClusterIP"}
    assert got == {"web-a": (True, ["web-a", "web-b"]), "web-b": (True, ["web-a", "web-b"]),
                   "web-c": (True, ["web-c"]), "lone": (False, [])}
    assert any("distribution not checked: internalTrafficPolicy Local" in n for n in plan.notes)
