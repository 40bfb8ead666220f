"""The plan is pure, deterministic and in kernel order (no root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology, parse_yaml
from netlab.model.topology import Topology
from netlab.plan.build import ORDER, build_plan, place
from netlab.plan.render import render_commands
from netlab.plan.resources import Address, Fdb, Neigh, Route, Veth, Vxlan, resource_from_json

GOLDEN = Path(__file__).parent / "golden" / "default_plan.txt"


def default_plan():
    return build_plan(resolve(load_topology(None)))


def lab_from(text: str):
    return resolve(Topology.model_validate(parse_yaml(text, "t.yaml").data))


def test_default_plan_matches_golden():
    """The whole default lab as ip(8) commands; regenerate with NETLAB_REGEN=1 after a deliberate change."""
    text = render_commands(default_plan())
    import os

    if os.environ.get("NETLAB_REGEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_plan_is_deterministic():
    assert default_plan() == default_plan()
    assert json.dumps(default_plan().to_json()) == json.dumps(default_plan().to_json())


def test_a_labs_plan_is_built_once_and_another_lab_gets_its_own():
    lab = resolve(load_topology(None))
    assert build_plan(lab) is build_plan(lab)  # up, the doctor and status ask for the same object
    other = resolve(load_topology(None))
    assert build_plan(other) is not build_plan(lab) and build_plan(other) == build_plan(lab)
    assert build_plan(lab).netns == [r.netns for r in build_plan(lab).resources if r.kind == "netns"]


lab_pod_cidr = __import__("ipaddress").IPv4Network("10.244.0.0/16")


def test_flannel_objects_for_each_remote_node():
    plan = default_plan()
    (vx,) = [r for r in plan.resources if isinstance(r, Vxlan) and r.netns == "demo-minikube"]
    assert (vx.name, vx.vni, vx.port, str(vx.local), vx.dev, vx.mtu) == ("flannel.1", 1, 8472, "192.168.122.215",
                                                                       "eth0", 1450)
    remote = next(r for r in plan.resources if isinstance(r, Vxlan) and r.netns == "demo-minikube-m02")
    (neigh,) = [r for r in plan.resources if isinstance(r, Neigh) and r.netns == "demo-minikube"
                and r.dev == "flannel.1"]
    (fdb,) = [r for r in plan.resources if isinstance(r, Fdb) and r.netns == "demo-minikube"]
    (route,) = [r for r in plan.resources if isinstance(r, Route) and r.netns == "demo-minikube"
                and r.dst.subnet_of(lab_pod_cidr)]
    assert str(neigh.dst) == "10.244.1.0" and neigh.lladdr == remote.mac
    assert fdb.lladdr == remote.mac and str(fdb.dst) == "192.168.122.7"
    assert str(route.dst) == "10.244.1.0/24" and str(route.gateway) == "10.244.1.0" and route.onlink
    # Flannel's order: ARP, FDB, then the route last.
    idx = plan.resources.index
    assert idx(neigh) < idx(fdb) < idx(route)


def test_resources_come_in_kernel_order():
    res = default_plan().resources
    assert [place(r) for r in res] == sorted(place(r) for r in res)
    kinds = [r.kind for r in res if r.kind != "sysctl"]
    assert kinds == sorted(kinds, key=ORDER.index)
    # A sysctl comes before every link but those whose file exists only later: a pod's eth0 arp_notify after
    # the pod's eth0 and routes, the nodes' conntrack timeouts after their rule tables (which load nf_conntrack).
    first_link = min(i for i, r in enumerate(res) if r.kind in ("bridge", "veth"))
    late = {r.name for i, r in enumerate(res) if r.kind == "sysctl" and i > first_link}
    assert late == {"net.ipv4.conf.eth0.arp_notify", "net.netfilter.nf_conntrack_tcp_timeout_established",
                    "net.netfilter.nf_conntrack_tcp_timeout_close_wait"}
    last_table = max(i for i, r in enumerate(res) if r.kind in ("nat", "nft"))
    assert all(i > last_table for i, r in enumerate(res) if r.kind == "sysctl" and r.name.startswith("net.netfilter."))
    pod_routes = max(i for i, r in enumerate(res) if r.kind == "route" and r.netns == "demo-fedora-4")
    assert all(i > pod_routes for i, r in enumerate(res) if r.kind == "sysctl" and r.name.endswith(".arp_notify"))
    plan = default_plan()
    for r in plan.resources:
        if isinstance(r, Veth):
            # Both ends' namespaces exist before the pair is made.
            assert plan.resources.index(r) > max(i for i, x in enumerate(plan.resources) if x.kind == "netns")


def test_pods_get_overlay_mtu_and_default_route():
    plan = default_plan()
    veths = [r for r in plan.resources if isinstance(r, Veth) and r.peer_netns == "demo-fedora-1"]
    assert len(veths) == 1 and veths[0].mtu == 1450 and veths[0].master == "cni0" and veths[0].hairpin
    assert veths[0].peer_mac == "9e:b4:a1:d1:ba:d3"
    routes = [r for r in plan.resources if isinstance(r, Route) and r.netns == "demo-fedora-1"]
    # Flannel's CNI delegate config: ipam routes [{dst: 10.244.0.0/16}], then isDefaultGateway.
    assert [(str(r.dst), str(r.gateway), r.dev, r.proto) for r in routes] == [
        ("10.244.0.0/16", "10.244.0.1", "eth0", "boot"), ("0.0.0.0/0", "10.244.0.1", "eth0", "boot")]
    assert [r.command() for r in routes] == ["ip -n demo-fedora-1 route add 10.244.0.0/16 via 10.244.0.1 dev eth0",
                                             "ip -n demo-fedora-1 route add default via 10.244.0.1 dev eth0"]


def test_nodes_default_to_the_underlay_router_on_br0_without_internet():
    """Like libvirt's virbr0 (192.168.122.1) on the host of the tutorial's VMs."""
    plan = default_plan()
    br0 = [r for r in plan.resources if isinstance(r, Address) and r.netns == "demo-underlay"]
    assert [(r.dev, str(r.address), str(r.broadcast)) for r in br0] == [("br0", "192.168.122.1/24", "192.168.122.255")]
    for ns in ("demo-minikube", "demo-minikube-m02"):
        routes = [r for r in plan.resources if isinstance(r, Route) and r.netns == ns and r.dst.prefixlen == 0]
        assert [r.command() for r in routes] == [f"ip -n {ns} route add default via 192.168.122.1 dev eth0"]
    assert not [r for r in plan.resources if isinstance(r, Route) and str(r.dst) == "10.96.0.0/12"]


def test_addresses_carry_their_broadcast_like_the_real_tools_set_them():
    plan = default_plan()
    got = {(r.netns, r.dev): (str(r.address), str(r.broadcast) if r.broadcast else None)
           for r in plan.resources if isinstance(r, Address)}
    assert got[("demo-minikube", "cni0")] == ("10.244.0.1/24", "10.244.0.255")
    assert got[("demo-fedora-1", "eth0")] == ("10.244.0.2/24", "10.244.0.255")
    assert got[("demo-minikube", "eth0")] == ("192.168.122.215/24", "192.168.122.255")
    assert got[("demo-minikube", "flannel.1")] == ("10.244.0.0/32", None)  # a /32 has none


def test_host_gw_has_no_vxlan_and_routes_via_node_ips():
    lab = lab_from("""
name: hg
network: {mode: host-gw}
nodes: [{name: a}, {name: b}, {name: c}]
pods: [{name: p1, node: a}, {name: p2, node: b}]
""")
    plan = build_plan(lab)
    assert not [r for r in plan.resources if isinstance(r, Vxlan)]
    routes = {(r.netns, str(r.dst), str(r.gateway), r.dev) for r in plan.resources
              if isinstance(r, Route) and r.netns == "hg-a" and r.dst.subnet_of(lab_pod_cidr)}
    assert routes == {("hg-a", "10.244.1.0/24", "192.168.122.3", "eth0"),
                      ("hg-a", "10.244.2.0/24", "192.168.122.4", "eth0")}
    pod_veth = next(r for r in plan.resources if isinstance(r, Veth) and r.peer_netns == "hg-p1")
    assert pod_veth.mtu == 1500


@pytest.mark.parametrize("r", default_plan().resources, ids=lambda r: "-".join(map(str, r.key)))
def test_resources_round_trip_through_json(r):
    assert resource_from_json(json.loads(json.dumps(r.to_json()))) == r


def test_every_kernel_name_is_safe_and_short():
    plan = default_plan()
    for r in plan.resources:
        assert len(r.netns) <= 63
        name = getattr(r, "name", None)
        if r.kind in ("bridge", "veth", "vxlan"):
            assert len(name.encode()) <= 15
            assert len(r.peer_name.encode()) <= 15 if isinstance(r, Veth) else True


POD_SETTING = "net.ipv4.conf.eth0.arp_notify"


def test_every_pod_netlab_wires_has_its_eth0_arp_notify_as_the_cni_bridge_plugin_sets_it():
    """The bridge plugin's cmdAdd writes arp_notify=1 on the pod's interface (the kernel then sends a gratuitous
    ARP whenever eth0 comes up); netlab plans the same for the pods it wires, and nothing else of IPv4:
    all/default keep the kernel's 0, and so do the nodes' interfaces."""
    plan = default_plan()
    sysctls = [r for r in plan.of_kind("sysctl") if "arp_notify" in r.name]
    assert {(r.netns, r.name, r.value) for r in sysctls} == \
        {(f"demo-fedora-{i}", POD_SETTING, "1") for i in (1, 2, 3, 4)}


def test_a_cni_lab_plans_the_setting_for_the_pods_its_plugins_attached_only():
    """reference: the pods the plugin has attached are compared as netlab's own (the plugin set it, status
    checks it); a pod not attached yet has no eth0 to compare."""
    from netlab.model.lab import CniAttachment

    text = """
name: cn
network: {cni: reference}
nodes: [{name: n1}]
pods: [{name: a, node: n1}, {name: b, node: n1}]
"""
    ref = lab_from(text)
    assert not [r for r in build_plan(ref).of_kind("sysctl") if r.name == POD_SETTING]
    a = next(p for p in ref.pods if p.name == "a")
    attached = ref.with_attachments({"a": CniAttachment(ip=a.ip, mac="0a:58:0a:f4:00:02", host_veth="veth0a1b2c3d",
                                                        host_mac="0a:58:0a:f4:00:01")})
    assert [r.netns for r in build_plan(attached).of_kind("sysctl") if r.name == POD_SETTING] == ["cn-a"]


def test_when_a_sysctl_can_be_written():
    from netlab.plan.sysctls import when_written

    assert when_written("net.ipv4.conf.default.arp_ignore") == "netns"  # before the links, which copy it
    assert when_written("net.ipv4.conf.all.rp_filter") == "netns"
    assert when_written("net.ipv4.ip_forward") == "netns"
    assert when_written("net.bridge.bridge-nf-call-iptables") == "netns"
    assert when_written("net.ipv4.conf.eth0.arp_notify") == "link"
    assert when_written("net.ipv4.conf.flannel.1.rp_filter") == "link"
    assert when_written("net.netfilter.nf_conntrack_tcp_timeout_established") == "tables"


def test_the_plans_last_check_refuses_a_name_unsafe_for_its_use_though_safe_for_another():
    """plan/build._check_unique checks each name once per use: a name that is a safe namespace is still
    checked as an interface name (15 bytes at most), and an object twice is refused."""
    from netlab.plan.build import _check_unique

    def veth(netns: str, name: str, peer_netns: str = "lab-p1") -> Veth:
        return Veth(netns=netns, name=name, mtu=1500, mac="02:00:00:00:00:01", peer_netns=peer_netns,
                    peer_name="eth0", peer_mac="02:00:00:00:00:02")

    long = "lab-a-long-pod-name"  # a safe namespace, 19 bytes: too long for an interface
    _check_unique([veth(long, "veth1", peer_netns=long), veth("lab-n1", "veth2", peer_netns=long)])
    with pytest.raises(ValueError, match="interface"):
        _check_unique([veth(long, "veth1"), veth("lab-n1", long)])
    with pytest.raises(ValueError, match="namespace"):
        _check_unique([veth("lab-n1", "veth1"), veth("lab-n1", "veth2", peer_netns="../etc")])
    with pytest.raises(ValueError, match="two objects"):
        _check_unique([veth("lab-n1", "veth1"), veth("lab-n1", "veth1")])
