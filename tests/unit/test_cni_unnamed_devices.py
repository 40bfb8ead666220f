"""What a CNI chain makes on a node stays the plugins' when its result does not name it (QA q24 #1), against fake
plugins and the fake kernel.

A 0.1.0/0.2.0 result has no ``interfaces`` (netlab reads it as libcni does: ip4, ip6, dns), and a 1.0.0 one may
list none: the host end of the pod's veth, and the route the plugin put on it, were "extra" to status, `up` (and
`up --watch`) deleted them, and the pod was cut off. On a real node nothing but the plugin's DEL takes them. What
netlab itself makes on the node (its eth0 to the underlay) stays its drift, and so does a veth added by hand there
(its peer in no pod), with its routes (QA q29 #1). The real plugins in real namespaces are
tests/integration/test_cni_unnamed_veth.py's.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network


from cni_fakes import VethPlugins, cni_topo, kernel_lab_world, up
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.kernel.rtnl_parse import LinkMsg
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Address, Route, Veth
from netlab.realize import state as state_mod
from netlab.realize.attachments import plugin_node_devices

TOPO = cni_topo("fkun") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


class Plugins(VethPlugins):
    """Stands in for invoke.exec_plugin: the chain's ADD makes a veth pair as ptp does (the pod's eth0 with its
    address, the node's end with a host route to the pod) and answers with a 0.2.0 result (ip4 only)."""

    version = "0.2.0"

    def add(self, pod, ip, env, *, node_netns, netns, host):
        self.kernel.apply([
            Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1], peer_netns=netns,
                           peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1])),
            Op("add", Address(netns=netns, dev="eth0", address=IPv4Interface(f"{ip}/24"))),
            Op("add", Route(netns=node_netns, dst=IPv4Network(f"{ip}/32"), gateway=None, dev=host, scope="link"))])
        return {"cniVersion": "0.2.0", "ip4": {"ip": f"{ip}/24", "gateway": "10.244.0.1"}}


world = kernel_lab_world(TOPO, Plugins)


def test_a_veth_no_result_names_is_never_extra_nor_deleted(world):
    lab, k = world
    up(lab, k)
    node = lab.node("n1").netns
    st = state_mod.load_state(lab.name)
    # status said "extra: link vetha in fkun-n1 (link)", and its route
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    for _ in range(2):  # up deleted both veths: the pods were left with lo only
        result = up(lab, k)
        assert not [a for a in result.fixed if "veth" in a]
        links = k.snapshot(node).links
        assert "vetha" in links and "vethb" in links
        assert "eth0" in k.snapshot(lab.pod("a").netns).links
    # what netlab itself makes on the node stays its own: an address added by hand on its eth0 is drift, up takes it
    k.apply([Op("add", Address(netns=node, dev="eth0", address=IPv4Interface("192.0.2.9/24")))])
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == [
        f"extra: address 192.0.2.9/24 on eth0 in {node}"]
    up(lab, k)
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_veth_added_by_hand_on_the_node_and_its_route_are_extra_and_up_takes_them(world):
    """QA q29 #1: a veth added by hand on a conflist node (its peer in the node too) with a route on it (there a
    /32 hijacking a pod's address; here the /31 the fake's ptp routes leave free) was the plugins' (every device
    netlab does not make there): status said "all as planned" and up had nothing to repair while a could not reach
    b. The real plugins' veths and the hijack are tests/integration/test_cni_unnamed_veth.py's."""
    lab, k = world
    up(lab, k)
    node, b_ip = lab.node("n1").netns, IPv4Network("10.244.0.8/31")
    k.apply([Op("add", Veth(netns=node, name="q29hand", mtu=1500, mac="02:00:00:00:09:01", peer_netns=node,
                            peer_name="q29peer", peer_mac="02:00:00:00:09:02")),
             Op("add", Route(netns=node, dst=b_ip, gateway=None, dev="q29hand", scope="link"))])
    st = state_mod.load_state(lab.name)
    drift = lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift
    assert {d.split(" in ")[0] for d in drift} == {
        "extra: link q29hand", "extra: link q29peer", f"extra: route {b_ip} dev q29hand"}, drift
    assert not [f for f in up(lab, k).fixed if "veth" in f]  # up deleted the pods' veths with the hand's
    links = k.snapshot(node).links
    assert "q29hand" not in links and "q29peer" not in links and {"vetha", "vethb"} <= set(links)
    pods = {str(lab.pod(p).ip) for p in "ab"}
    assert {(r.dst, r.oif) for r in k.snapshot(node).routes if r.dst in pods and r.table == 254} == {
        (str(lab.pod(p).ip), links["veth" + p].index) for p in "ab"}  # the plugins' routes to the pods stay
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def _link(index, name, kind="veth", peer=None, nsid=None, master=None):
    return LinkMsg(index=index, name=name, kind=kind, up=True, mtu=1500, mac="", master=master, peer=peer,
                   peer_netnsid=nsid, alias=None, group=0, txqlen=1000)


def test_a_nodes_devices_are_the_plugins_when_named_or_paired_with_a_pod():
    """plugin_node_devices, the one rule (status, up, trace): the bridge the conflist names (cni0); bridge's host
    veth under it; ptp's host veth, unenslaved, its peer a pod's eth0; not netlab's eth0 (its peer is the
    underlay's), nor a veth added by hand (its peer in the node, or in a namespace that is no pod's). QA q31 #2:
    numbers are per namespace: a veth whose (index, peer index) are another node's pod pair, or whose peer is a
    pod's interface its chain was not asked for, is not theirs either."""
    node = [_link(1, "lo", None), _link(2, "eth0", peer=7, nsid=0), _link(3, "cni0", "bridge"),
            _link(4, "veth1c8310a0", peer=2, nsid=1, master=3), _link(5, "vethptp", peer=2, nsid=2),
            _link(6, "q29hand", peer=8), _link(8, "q29peer", peer=6), _link(9, "q29far", peer=2, nsid=3),
            _link(12, "q31other", peer=2, nsid=4), _link(13, "q31net9", peer=3, nsid=1)]
    pods = {"p1": (frozenset({"lo", "eth0"}), [_link(1, "lo", None), _link(2, "eth0", peer=4, nsid=0),
                                               _link(3, "net9", peer=13, nsid=0)]),
            "p2": (frozenset({"lo", "eth0"}), [_link(1, "lo", None), _link(2, "eth0", peer=5, nsid=0)])}
    nsids = {"p1": 1, "p2": 2}
    assert plugin_node_devices(node, pods, nsids, {"cni0"}) == {"cni0", "veth1c8310a0", "vethptp"}
    # another node's pod p3, its eth0 index 2 paired with 12 there: q31other's numbers, its peer elsewhere
    other = {**pods, "p3": (frozenset({"eth0"}), [_link(2, "eth0", peer=12, nsid=0)])}
    assert "q31other" not in plugin_node_devices(node, other, nsids, {"cni0"})
    assert "q31other" not in plugin_node_devices(node, other, {**nsids, "p3": 3}, {"cni0"})  # p3 is not in 4
    assert "veth1c8310a0" not in plugin_node_devices(node, pods, {"p1": 2, "p2": 1}, set())  # ids swapped
    assert plugin_node_devices(node, {}, {}, set()) == set()  # no pod: no veth of theirs (all as a hand's)


def test_a_port_of_the_plugins_bridge_is_theirs_only_paired_with_a_pod_and_their_bridge_needs_no_name():
    """QA q38 #2: a veth added by hand as a port of the plugins' bridge (its peer in the node, or in a namespace
    that is no pod's of the node) was theirs as a port, with the /32 route on it hijacking a pod: status "all as
    planned", up "nothing to change". A port that is no veth (a plugin's VXLAN) stays theirs. QA q38 #3: the bridge
    their pods' veths are ports of is theirs though neither the conflist's ``bridge`` key nor a result names it."""
    node = [_link(1, "lo", None), _link(2, "eth0", peer=7, nsid=0), _link(3, "q38hb0", "bridge"),
            _link(4, "hb1", peer=2, nsid=1, master=3), _link(5, "hx0", peer=6, master=3), _link(6, "hx1", peer=5),
            _link(8, "hy0", peer=2, nsid=3, master=3), _link(9, "vx0", "vxlan", master=3),
            _link(10, "handbr", "bridge"), _link(11, "hz0", peer=2, nsid=3, master=10)]
    pods = {"p1": (frozenset({"eth0"}), [_link(1, "lo", None), _link(2, "eth0", peer=4, nsid=0)])}
    assert plugin_node_devices(node, pods, {"p1": 1}, set()) == {"q38hb0", "hb1", "vx0"}
    assert plugin_node_devices(node, pods, {"p1": 1}, {"q38hb0"}) == {"q38hb0", "hb1", "vx0"}
    # no pod paired on the node: a bridge nothing names is no one's (as a hand's), one named stays theirs
    assert plugin_node_devices(node, {}, {}, set()) == set()
    assert plugin_node_devices(node, {}, {}, {"q38hb0"}) == {"q38hb0", "vx0"}


def test_a_lab_that_was_builtin_loses_netlabs_own_pod_side_when_a_conflist_takes_over(world, tmp_path):
    """Before any plugin ran, the node's devices netlab does not plan are the builtin lab's own (cni0, its veths):
    extra, deleted by the up that then ADDs the pods (realize/attachments.check_cni_change)."""
    lab, k = world
    builtin = TOPO.replace("network:\n  cni: {conflist: net.conflist, binDir: bin}\n", "")
    (tmp_path / "b.yaml").write_text(builtin)
    old = resolve(load_topology(str(tmp_path / "b.yaml")))
    up(old, k)
    node = lab.node("n1").netns
    own = {old.pod("a").host_veth, old.pod("b").host_veth, "cni0"}
    assert own <= set(k.snapshot(node).links)
    up(lab, k)
    links = set(k.snapshot(node).links)
    assert not own & links and {"vetha", "vethb"} <= links
    assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
