"""The Services plan: kube-proxy's chains and rule shapes, pinned by golden files (no root).

Regenerate the golden files after an intended change with
``NETLAB_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_services_plan.py tests/unit/test_internet_plan.py``
and review the diff.
"""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from netlab.model.addressing import allocate
from netlab.model.lab import Lab
from netlab.model.topology import Topology
from netlab.plan import iptables, services
from netlab.plan.build import build_plan
from netlab.plan.iptables_save import saved_probability
from netlab.plan.resources import NatRules, Route, Sysctl, resource_from_json
from netlab.realize.netfilter import Table, compute_change, parse_save
from netlab.model import clusterdns as dns
from netlab.model import dnsrecords

GOLDEN = Path(__file__).parent / "golden"
TOPO = GOLDEN / "services_topology.yaml"


def lab_of(data: dict) -> Lab:
    """A Lab straight from the model (no loader, no add-ons): what the golden files pin."""
    topo = Topology.model_validate(data)
    addressing, problems = allocate(topo)
    assert not problems, problems
    return Lab(topo, addressing)


def golden_lab() -> Lab:
    return lab_of(yaml.safe_load(TOPO.read_text()))


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NETLAB_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with NETLAB_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the golden file (NETLAB_REGEN_GOLDEN=1 to accept)"


def node_res(lab: Lab, table: str, node: str = "minikube") -> NatRules:
    netns = lab.node(node).netns
    return next(r for r in services.resources(lab) if r.kind == "nat" and r.table == table and r.netns == netns)


# --- golden files -----------------------------------------------------------------

def test_golden_nat_payload():
    check_golden("services_nat.txt", node_res(golden_lab(), "nat").payload)


def test_golden_filter_payload():
    check_golden("services_filter.txt", node_res(golden_lab(), "filter").payload)


def test_golden_rules_as_iptables_save_prints_them():
    lab = golden_lab()
    text = "\n".join(node_res(lab, "nat").rules + node_res(lab, "filter").rules) + "\n"
    check_golden("services_rules.txt", text)


# --- kube-proxy's names and shapes --------------------------------------------------

def test_chain_names_are_kube_proxys():
    # Values from kube-proxy's own tests (pkg/proxy/iptables/proxier_test.go).
    assert services.svc_chain("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert services.sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert services.svc_chain("ns2/svc2:p80", "tcp") == "KUBE-SVC-GNZBNJ2PO5MGZ6GT"
    assert services.ext_chain("ns2/svc2:p80", "tcp") == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"


def test_chain_names_fit_and_are_deterministic():
    a, b = node_res(golden_lab(), "nat"), node_res(golden_lab(), "nat")
    assert a == b
    assert all(len(c) <= 28 for c in a.chains)
    assert len(set(a.chains)) == len(a.chains)


@pytest.mark.parametrize("n,expected", [(2, "0.50000000000"), (3, "0.33333333349"), (4, "0.25000000000"),
                                        (5, "0.20000000019")])
def test_probability_is_printed_like_iptables_save(n, expected):
    assert iptables.probability(n) == expected


def test_two_endpoint_service_shapes():
    """Each rule as kube-proxy's syncProxyRules writes it (payload) and as iptables-save prints it (rules)."""
    lab = golden_lab()
    res = node_res(lab, "nat")
    payload, rules = res.payload.splitlines(), res.rules
    svc = services.svc_chain("default/web:http", "tcp")
    sep1 = services.sep_chain("default/web:http", "tcp", "10.244.0.2:8080")
    sep2 = services.sep_chain("default/web:http", "tcp", "10.244.1.3:8080")
    ext = "KUBE-EXT-" + svc[9:]
    written_and_saved = [
        (f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.20 '
         f"--dport 80 -j {svc}",
         f'-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp '
         f"--dport 80 -j {svc}"),
        (f'-A {svc} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.20 --dport 80 '
         "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
         f'-A {svc} ! -s 10.244.0.0/16 -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" '
         "-m tcp --dport 80 -j KUBE-MARK-MASQ"),
        (f'-A {svc} -m comment --comment "default/web:http -> 10.244.0.2:8080" -m statistic --mode random '
         f"--probability 0.5000000000 -j {sep1}",
         f'-A {svc} -m comment --comment "default/web:http -> 10.244.0.2:8080" -m statistic --mode random '
         f"--probability 0.50000000000 -j {sep1}"),
        (f'-A {svc} -m comment --comment "default/web:http -> 10.244.1.3:8080" -j {sep2}',
         f'-A {svc} -m comment --comment "default/web:http -> 10.244.1.3:8080" -j {sep2}'),
        (f"-A {sep1} -m comment --comment default/web:http -s 10.244.0.2 -j KUBE-MARK-MASQ",
         f'-A {sep1} -s 10.244.0.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ'),
        (f"-A {sep1} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.0.2:8080",
         f'-A {sep1} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.0.2:8080'),
        ("-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000", "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"),
        ("-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN",
         "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"),
        ("-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000", "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0"),
        ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
         "--random-fully",
         '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
         "--random-fully"),
        (f"-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j {ext}",
         f'-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j {ext}'),
        (f'-A {ext} -m comment --comment "masquerade traffic for default/web:http external destinations" '
         "-j KUBE-MARK-MASQ",
         f'-A {ext} -m comment --comment "masquerade traffic for default/web:http external destinations" '
         "-j KUBE-MARK-MASQ"),
    ]
    for written, saved in written_and_saved:
        assert written in payload, written
        assert saved in rules, saved
    for jump in ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'):
        assert jump in rules and f"#   {jump}" in payload
    # NodePorts: the last rule of KUBE-SERVICES.
    ks = [r for r in rules if r.startswith("-A KUBE-SERVICES ")]
    assert ks[-1] == ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
                      'the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


def test_hashes_are_kube_proxys():
    """The issue's golden values: servicePortChainName and servicePortEndpointChainName."""
    assert services.svc_chain("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert services.sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


# "saved": what iptables-save (1.8.9, nft and legacy alike) printed for the "written" value restored in a
# scratch namespace on the project's CI machine.
@pytest.mark.parametrize("n,written,saved", [(2, "0.5000000000", "0.50000000000"),
                                             (3, "0.3333333333", "0.33333333349"),
                                             (5, "0.2000000000", "0.20000000019"),
                                             (7, "0.1428571429", "0.14285714272"),
                                             (1000, "0.0010000000", "0.00100000016")])
def test_probabilities_are_written_0_10f_and_saved_from_the_fixed_point(n, written, saved):
    assert iptables.kube_probability(n) == written
    assert saved_probability(written) == saved


def test_client_ip_affinity_uses_recent_like_kube_proxy():
    res = node_res(golden_lab(), "nat")
    rules = res.rules
    svc = services.svc_chain("default/sticky", "tcp")
    sep = services.sep_chain("default/sticky", "tcp", "10.244.0.2:8080")
    assert (f'-A {svc} -m comment --comment "default/sticky -> 10.244.0.2:8080" -m recent --name {sep} --rcheck '
            f"--seconds 10800 --reap -j {sep}") in res.payload.splitlines()
    assert (f'-A {svc} -m comment --comment "default/sticky -> 10.244.0.2:8080" -m recent --rcheck --seconds 10800 '
            f"--reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}") in rules
    assert (f'-A {sep} -p tcp -m comment --comment "default/sticky" -m recent --set --name {sep} '
            "--mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.0.2:8080") in rules
    mine = [r for r in rules if r.startswith(f"-A {svc} ")]
    # recent checks come before the random spread
    assert [("recent" in r) for r in mine[1:]] == [True, True, False, False]


def test_service_without_endpoints_rejects_in_filter_and_has_no_nat():
    lab = golden_lab()
    nat, filt = node_res(lab, "nat"), node_res(lab, "filter")
    assert not any("10.96.0.22" in r for r in nat.rules)
    assert ('-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp '
            "-d 10.96.0.22 --dport 80 -j REJECT") in filt.payload.splitlines()
    assert ('-A KUBE-SERVICES -d 10.96.0.22/32 -p tcp -m comment --comment "default/empty:http has no endpoints" '
            "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable") in filt.rules
    assert ('-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/empty:http has no endpoints" '
            "-m addrtype --dst-type LOCAL -m tcp --dport 30081 -j REJECT --reject-with icmp-port-unreachable"
            ) in filt.rules
    # kube-proxy's jumps, in the order EnsureRule's prepends leave them on a fresh node, before kubelet's.
    builtin = [r for r in filt.rules if iptables.chain_of(r) in iptables.BUILTIN_CHAINS]
    assert builtin == [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
        "-j KUBE-PROXY-FIREWALL",
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
        "-j KUBE-PROXY-FIREWALL",
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
        "-j KUBE-PROXY-FIREWALL",
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-A OUTPUT -j KUBE-FIREWALL",
    ]
    # localhostNodePorts: a packet to 127/8 from elsewhere is dropped unless the node's own DNAT made it; as
    # iptables-save prints it on a real node.
    assert ('-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet '
            'connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP') in filt.rules


def test_udp_service():
    rules = node_res(golden_lab(), "nat").rules
    sep = services.sep_chain("default/resolver:dns", "udp", "10.244.1.4:5353")
    assert (f'-A {sep} -p udp -m comment --comment "default/resolver:dns" -m udp -j DNAT '
            "--to-destination 10.244.1.4:5353") in rules


def test_large_cluster_mode_drops_the_per_endpoint_comments():
    """Over 1000 endpoints, kube-proxy leaves out the comments of KUBE-SVC -> KUBE-SEP and KUBE-SEP rules."""
    lab = golden_lab()
    sps = services.service_ports(lab)
    assert not services.large_cluster(sps)
    many = [replace(sps[0], endpoints=tuple((IPv4Address(f"10.244.{i // 250}.{i % 250 + 2}"), 8080)
                                            for i in range(1001)))]
    assert services.large_cluster(many)
    rules = services.kube_nat(lab, many).rules()
    sep_lines = [r for r in rules if r.startswith("-A KUBE-SEP-")]
    assert sep_lines and not any("-m comment" in r for r in sep_lines)
    svc_lines = [r for r in rules if r.startswith(f"-A {many[0].svc_chain} ")]
    assert "cluster IP" in svc_lines[0] and not any("-m comment" in r for r in svc_lines[1:])


def test_payload_declares_only_lab_chains_and_never_appends_to_builtins():
    for table in ("nat", "filter"):
        res = node_res(golden_lab(), table)
        lines = res.payload.splitlines()
        declared = [l[1:].split()[0] for l in lines if l.startswith(":")]
        assert declared == sorted(res.chains)
        assert not set(declared) & set(iptables.BUILTIN_CHAINS)
        for line in lines:
            if line.startswith("-"):
                assert iptables.chain_of(line) in res.chains, line
        # The jumps are documented in the payload, as comments.
        for jump in (r for r in res.rules if iptables.chain_of(r) in iptables.BUILTIN_CHAINS):
            assert f"#   {jump}" in lines


def test_rules_are_in_canonical_order():
    res = node_res(golden_lab(), "nat")
    assert res.rules == iptables.canonical_order(list(res.rules))
    # the plan's rules, read back through the same parser status uses, compare equal
    text = "*nat\n" + "\n".join(f":{c} - [0:0]" for c in res.chains) + "\n" + "\n".join(res.rules) + "\nCOMMIT\n"
    tab = parse_save(text, "nat")
    from netlab.realize.netfilter import lab_lines

    assert tuple(lab_lines(tab, res.chains)) == res.rules


def test_every_node_gets_the_same_rules_and_sysctl():
    lab = golden_lab()
    out = services.resources(lab)
    for node in lab.nodes:
        mine = [r for r in out if r.netns == node.netns]
        assert Sysctl(netns=node.netns, name="net.bridge.bridge-nf-call-iptables", value="1") in mine
        assert {r.table for r in mine if isinstance(r, NatRules)} == {"nat", "filter"}
    # kube-proxy's rules are the same on every node; Flannel's FLANNEL-POSTRTG names the node's own lease.
    nats = [r for r in out if isinstance(r, NatRules) and r.table == "nat"]
    assert len({tuple(x for x in r.rules if "FLANNEL" not in x) for r in nats}) == 1
    assert len({r.rules for r in nats}) == len(lab.nodes)
    filters = [r for r in out if isinstance(r, NatRules) and r.table == "filter"]
    assert len({r.rules for r in filters}) == 1


def test_no_service_cidr_route_nodes_use_their_default_route():
    """A real node has no route for the Service CIDR: its default route carries a connection to a
    ClusterIP until OUTPUT's DNAT, then the kernel routes it again to the endpoint."""
    data = yaml.safe_load(TOPO.read_text())
    data.pop("internet")
    data["services"] = [s for s in data["services"] if s.get("type") != "LoadBalancer"]
    for lab in (lab_of(data), golden_lab()):
        assert not [r for r in services.resources(lab) if isinstance(r, Route)]
        routes = [r for r in build_plan(lab).resources if isinstance(r, Route) and r.dst.prefixlen == 0
                  and r.netns in {n.netns for n in lab.nodes}]
        assert sorted((r.netns, str(r.gateway), r.dev) for r in routes) == sorted(
            (n.netns, "192.168.122.1", "eth0") for n in lab.nodes)


def test_endpoint_index_agrees_with_lab_endpoints():
    lab = golden_lab()
    idx = services.endpoint_index(lab)
    for svc in lab.services:
        for port in svc.ports:
            assert idx[(svc.namespace, svc.name, port.port, port.protocol)] == lab.endpoints(svc, port)


def test_node_ports_explicit_then_lowest_free():
    lab = golden_lab()
    nps = services.node_ports(lab)
    assert nps[("default", "web", 80, "TCP")] == 30080
    assert nps[("default", "empty", 80, "TCP")] == 30081
    assert nps[("default", "pub", 80, "TCP")] == 30000
    assert ("default", "sticky", 8080, "TCP") not in nps


def test_plan_json_round_trip_keeps_nat_rules():
    lab = golden_lab()
    for r in services.resources(lab):
        assert resource_from_json(r.to_json()) == r


def test_whole_plan_builds_with_services():
    plan = build_plan(golden_lab())
    kinds = [r.kind for r in plan.resources]
    # the rule tables come last, but for kube-proxy's conntrack timeouts (nf_conntrack's files: there once the
    # rules have had the kernel load it), two per node
    late = 2 * len(golden_lab().nodes)
    assert kinds[-late:] == ["sysctl"] * late and kinds[-late - 1] == "nat"
    assert {r.name for r in plan.resources[-late:]} == {"net.netfilter.nf_conntrack_tcp_timeout_established",
                                                       "net.netfilter.nf_conntrack_tcp_timeout_close_wait"}
    assert plan.of_kind("nat")


# --- what apply computes from the plan (pure) -----------------------------------------

def test_apply_change_from_empty_writes_everything_and_inserts_jumps():
    res = node_res(golden_lab(), "nat")
    ch = compute_change(res, Table())
    assert set(ch.written) == set(res.chains)
    lines = ch.payload.splitlines()
    assert '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in lines
    # the last -I lands on top: POSTROUTING ends up KUBE-POSTROUTING first, then FLANNEL-POSTRTG
    post = [l for l in lines if l.startswith("-I POSTROUTING")]
    assert post == ['-I POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
                    '-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING']


def test_apply_change_is_empty_when_kernel_matches():
    res = node_res(golden_lab(), "nat")
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n" + "\n".join(f":{c} - [0:0]" for c in res.chains) + "\n"
            + "-A PREROUTING -s 198.51.100.1/32 -j RETURN\n" + "\n".join(res.rules) + "\nCOMMIT\n")
    ch = compute_change(res, parse_save(text, "nat"))
    assert not ch.changed


def test_apply_change_after_endpoint_removed_touches_only_that_service(tmp_path):
    lab = golden_lab()
    data = yaml.safe_load(TOPO.read_text())
    data["pods"][1]["labels"] = {}
    lab2 = lab_of(data)
    old, new = node_res(lab, "nat"), node_res(lab2, "nat")
    text = "*nat\n" + "\n".join(f":{c} - [0:0]" for c in old.chains) + "\n" + "\n".join(old.rules) + "\nCOMMIT\n"
    ch = compute_change(new, parse_save(text, "nat"), previous=old)
    gone = services.sep_chain("default/web:http", "tcp", "10.244.1.3:8080")
    assert gone in ch.deleted and f"-X {gone}" in ch.payload.splitlines()
    assert services.svc_chain("default/web:http", "tcp") in ch.written
    assert "KUBE-MARK-MASQ" not in ch.written
    assert not ch.jumps


# --- DNS add-on (pure) -------------------------------------------------------------

def test_cluster_dns_is_added_once_with_kubeadm_ip():
    topo = Topology.model_validate(yaml.safe_load(TOPO.read_text()))
    with_dns = dns.with_cluster_dns(topo)
    assert dns.with_cluster_dns(with_dns) == with_dns
    svc = dns.dns_service(with_dns)
    assert svc is not None and svc.cluster_ip == IPv4Address("10.96.0.10")
    pod = next(p for p in with_dns.pods if p.name == "kube-dns")
    argv = pod.containers[0].command
    assert argv[0] == "dnsmasq"
    lab = lab_of(with_dns.model_dump(mode="json", by_alias=True, exclude_none=True))
    hosts = dnsrecords.hosts_file(dnsrecords.cluster_records(lab.topo, lab.addressing))  # the A records dnsmasq re-reads
    assert "10.96.0.20 web.default.svc.cluster.local\n" in hosts
    assert "10.96.0.10 kube-dns.kube-system.svc.cluster.local\n" in hosts
    sps = {sp.name: sp for sp in services.service_ports(lab)}
    assert [str(ip) for ip, _ in sps["kube-system/kube-dns:dns"].endpoints] == [str(lab.pod("kube-dns").ip)]


def test_no_services_no_dns():
    data = yaml.safe_load(TOPO.read_text())
    data["services"] = []
    topo = Topology.model_validate(data)
    assert dns.with_cluster_dns(topo) is topo


def test_resolv_conf_is_kubelets_cluster_first():
    text = dns.resolv_conf("demo", IPv4Address("10.96.0.10"))
    assert "search default.svc.cluster.local svc.cluster.local cluster.local\n" in text
    assert "nameserver 10.96.0.10\n" in text and "options ndots:5\n" in text
    assert text.startswith("# netlab demo:")


CONNTRACK = {"net.netfilter.nf_conntrack_tcp_timeout_established": "86400",  # kube-proxy's 24h (the kernel's: 5 days)
             "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "3600"}  # its 1h (the kernel's: 60 s)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_kube_proxy_sets_the_conntrack_timeouts_on_every_node_in_both_modes(mode):
    """kube-proxy's platformSetup writes its conntrack defaults on its node whatever the mode, and only those two
    of the per-namespace ones (nf_conntrack_max and hashsize are the host's); pods and the rest keep the kernel's."""
    data = yaml.safe_load(TOPO.read_text())
    data["cluster"] = {**data.get("cluster", {}), "kubeProxyMode": mode}
    lab = lab_of(data)
    plan = build_plan(lab)
    got: dict[str, dict[str, str]] = {}
    for r in plan.of_kind("sysctl"):
        if r.name.startswith("net.netfilter."):
            got.setdefault(r.netns, {})[r.name] = r.value
    assert got == {node.netns: CONNTRACK for node in lab.nodes}


def test_endpoints_are_ordered_as_kube_proxy_orders_them():
    """By their "IP:port" strings (endpointslicecache.go's byEndpoint), not by address: 10.244.0.18:8080 before
    10.244.0.2:8080, in the KUBE-SVC chain and in nftables mode's numgen elements."""
    data = {"name": "ord", "cluster": {"nodeMask": 28}, "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1", "ip": "10.244.0.2", "labels": {"app": "s"}},
                     {"name": "b", "node": "n1", "ip": "10.244.0.13", "labels": {"app": "s"}}],
            "services": [{"name": "s", "selector": {"app": "s"}, "ports": [{"port": 80, "targetPort": 8080}]}]}
    lab = lab_of(data)
    svc = lab.topo.services[0]
    assert [str(p.ip) for p, _ in lab.endpoints(svc, svc.ports[0])] == ["10.244.0.13", "10.244.0.2"]
    rules = [r for r in node_res(lab, "nat", "n1").rules if r.startswith("-A KUBE-SVC-") and "KUBE-SEP-" in r]
    assert ["10.244.0.13:8080" in rules[0], "10.244.0.2:8080" in rules[1]] == [True, True], rules
    assert "--probability 0.50000000000" in rules[0]
    nft = lab_of({**data, "cluster": {"nodeMask": 28, "kubeProxyMode": "nftables"}})
    [vmap] = [line for r in build_plan(nft).resources if r.kind == "nft" for line in r.payload.splitlines()
              if "numgen" in line]
    assert vmap.index("0 : goto endpoint-") < vmap.index("__10.244.0.13/8080") < vmap.index("1 : goto"), vmap
