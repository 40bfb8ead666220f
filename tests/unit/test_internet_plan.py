"""The simulated internet's plan: gateway, hosts, load balancer (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import yaml

from netlab.model import naming
from netlab.plan import internet
from netlab.plan.build import build_plan
from netlab.plan.resources import Address, Bridge, NatRules, Netns, Route, Sysctl, Veth
from test_services_plan import TOPO, check_golden, golden_lab, lab_of


def test_golden_internet_plan():
    lab = golden_lab()
    text = "\n".join(r.command() for r in internet.resources(lab)) + "\n"
    check_golden("internet_plan.txt", text)


def test_no_internet_no_resources():
    data = yaml.safe_load(TOPO.read_text())
    data.pop("internet")
    data["services"] = [s for s in data["services"] if s.get("type") != "LoadBalancer"]
    assert internet.resources(lab_of(data)) == []


def test_namespaces_and_names():
    lab = golden_lab()
    res = internet.resources(lab)
    assert [r.netns for r in res if isinstance(r, Netns)] == ["golden-gateway", "golden-lb", "golden-example"]
    for r in res:
        if isinstance(r, (Veth, Bridge)):
            naming.check_ifname(r.name)
            if isinstance(r, Veth):
                naming.check_ifname(r.peer_name)
                assert r.name == naming.veth_name(lab.name, "gateway") or r.name.startswith("veth")
        if isinstance(r, NatRules):
            assert all(len(c) <= 28 for c in r.chains)
    assert Sysctl(netns="golden-gateway", name="net.ipv4.ip_forward", value="1") in res
    assert Sysctl(netns="golden-example", name="net.ipv4.ip_forward", value="0") in res


def test_gateway_is_the_underlay_router_and_nodes_default_to_it():
    lab = golden_lab()
    res = internet.resources(lab)
    up = next(r for r in res if isinstance(r, Veth) and r.netns == lab.underlay_netns)
    assert (up.master, up.peer_netns, up.peer_name) == ("br0", "golden-gateway", "eth0")
    assert Address(netns="golden-gateway", dev="eth0", address=IPv4Interface("192.168.122.1/24"),
                   broadcast=IPv4Address("192.168.122.255")) in res
    assert Address(netns="golden-gateway", dev="inet0", address=IPv4Interface("203.0.113.1/24"),
                   broadcast=IPv4Address("203.0.113.255")) in res
    full = build_plan(lab).resources
    for node in lab.nodes:
        assert Route(netns=node.netns, dst=IPv4Network("0.0.0.0/0"), gateway=IPv4Address("192.168.122.1"),
                     dev="eth0") in full
    # The gateway holds the underlay's first address; br0 then has none.
    assert not [r for r in full if isinstance(r, Address) and r.netns == lab.underlay_netns]
    assert Route(netns="golden-example", dst=IPv4Network("0.0.0.0/0"), gateway=IPv4Address("203.0.113.1"),
                 dev="eth0") in res
    gw = next(r for r in res if isinstance(r, NatRules) and r.netns == "golden-gateway")
    assert gw.rules == ("-A POSTROUTING -j NETLAB-SNAT",
                        "-A NETLAB-SNAT -s 192.168.122.0/24 -o inet0 -j MASQUERADE")


def test_load_balancer_ip_allocation():
    lab = golden_lab()
    assert internet.load_balancer_ips(lab) == {("default", "pub"): IPv4Address("203.0.113.254")}
    data = yaml.safe_load(TOPO.read_text())
    data["services"][-1]["loadBalancerIP"] = "203.0.113.77"
    assert internet.load_balancer_ips(lab_of(data)) == {("default", "pub"): IPv4Address("203.0.113.77")}


def test_load_balancer_spreads_over_every_node_port():
    lab = golden_lab()
    lb = next(r for r in internet.resources(lab) if isinstance(r, NatRules) and r.netns == "golden-lb")
    chain = internet.lb_chain("default/pub:http", "tcp")
    assert f"-A NETLAB-LB-SERVICES -d 203.0.113.254/32 -p tcp -m tcp --dport 80 -j {chain}" in lb.rules
    assert (f"-A {chain} -p tcp -m tcp -m statistic --mode random --probability 0.50000000000 "
            "-j DNAT --to-destination 192.168.122.215:30000") in lb.rules
    assert f"-A {chain} -p tcp -m tcp -j DNAT --to-destination 192.168.122.7:30000" in lb.rules
    assert "-A NETLAB-LB-POSTRTG -m conntrack --ctstate DNAT -j MASQUERADE" in lb.rules
    assert Address(netns="golden-lb", dev="eth0", address=IPv4Interface("203.0.113.254/24"),
                   broadcast=IPv4Address("203.0.113.255")) in internet.resources(lab)


def test_whole_plan_has_unique_keys_and_lab_order():
    plan = build_plan(golden_lab())  # raises on duplicate keys
    assert "golden-gateway" in plan.netns and "golden-example" in plan.netns
