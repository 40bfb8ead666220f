"""The simulated internet's plan: gateway, hosts, the routes that balance LoadBalancer IPs (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import yaml

from netlab.model import naming
from netlab.plan import internet
from netlab.plan.build import build_plan
from netlab.plan.resources import Address, Bridge, NatRules, Netns, Route, Sysctl, Veth, resource_from_json
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
    assert [r.netns for r in res if isinstance(r, Netns)] == ["golden-gateway", "golden-example"]
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


def test_the_gateway_routes_each_load_balancer_ip_to_the_nodes():
    """A passthrough balancer, as MetalLB's in BGP mode: the gateway routes the LoadBalancer IP to every node's
    underlay address (one multipath route, the hop picked by a hash of the packet's five-tuple), answers ARP for
    it on the internet's side, and translates nothing; no namespace of its own holds the IP."""
    lab = golden_lab()
    res = internet.resources(lab)
    route = Route(netns="golden-gateway", dst=IPv4Network("203.0.113.254/32"), gateway=None, dev="eth0",
                  nexthops=(IPv4Address("192.168.122.215"), IPv4Address("192.168.122.7")))
    assert route in res
    assert route.command() == ("ip -n golden-gateway route add 203.0.113.254/32 nexthop via 192.168.122.215 dev eth0 "
                               "nexthop via 192.168.122.7 dev eth0")
    for name, value in (("net.ipv4.fib_multipath_hash_policy", "3"), ("net.ipv4.fib_multipath_hash_fields", "55"),
                        ("net.ipv4.conf.inet0.proxy_arp", "1")):
        assert Sysctl(netns="golden-gateway", name=name, value=value) in res
    assert not [r for r in res if isinstance(r, Address) and IPv4Address("203.0.113.254") == r.address.ip]
    assert [r.netns for r in res if isinstance(r, NatRules)] == ["golden-gateway"]  # its egress SNAT alone
    # A plan resource's JSON: the hops as `ip -j route` prints them, and back.
    data = route.to_json()
    assert data["nexthops"] == [{"gateway": "192.168.122.215", "dev": "eth0"}, {"gateway": "192.168.122.7",
                                                                                "dev": "eth0"}]
    assert resource_from_json(data) == route
    assert "nexthops" not in Route(netns="x", dst=IPv4Network("10.0.0.0/8"), gateway=None, dev="eth0").to_json()


def test_one_node_gets_a_plain_route_as_the_kernel_keeps_it():
    """The kernel keeps a multipath route of one hop as a plain one (`ip route` prints `via`): so does the plan,
    or status would call it drift."""
    data = yaml.safe_load(TOPO.read_text())
    data["nodes"] = data["nodes"][:1]
    data["pods"] = [p for p in data["pods"] if p.get("node") in (None, data["nodes"][0]["name"])]
    lab = lab_of(data)
    (route,) = [r for r in internet.resources(lab) if isinstance(r, Route) and r.dst == IPv4Network("203.0.113.254/32")]
    assert (route.gateway, route.dev, route.nexthops) == (lab.nodes[0].ip, "eth0", ())


def test_whole_plan_has_unique_keys_and_lab_order():
    plan = build_plan(golden_lab())  # raises on duplicate keys
    assert "golden-gateway" in plan.netns and "golden-example" in plan.netns
