"""A node's veth is its CNI plugins' only when its peer is the eth0 of one of that node's pods, not when its
numbers are another node's pod pair (QA q31 #2), against fake plugins and the fake kernel.

Ifindexes are per namespace: in a fresh lab a pod's eth0 is index 2 in each pod, and the next index a node gives
is often the one another node gave its host veth. A veth added by hand on node n2 to a namespace that is no pod's,
with the (index, peer index) of a pod's pair on n1 and a route hijacking a's address, was taken for the plugins':
status said nothing, up repaired nothing. Now the veth's IFLA_LINK_NETNSID must be the id n2 gives one of its own
pods' namespaces (kernel/nsid.py), and the peer of that index there the pod's CNI_IFNAME. The real plugins in real
namespaces are tests/integration/test_cni_unnamed_veth.py's.
"""

from __future__ import annotations

from ipaddress import IPv4Network


from cni_fakes import cni_topo, kernel_lab_world, up
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.plan.resources import Route, Veth
from netlab.realize import state as state_mod
from test_cni_unnamed_devices import Plugins

TOPO = cni_topo("fkvn", nodes=2) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
  - {name: c, node: n2, ip: 10.244.1.2}
"""


world = kernel_lab_world(TOPO, Plugins)


def test_a_hand_veth_with_another_nodes_pod_pair_numbers_is_extra_and_up_takes_it(world):
    lab, k = world
    up(lab, k)
    n1, n2, a_ip = lab.node("n1").netns, lab.node("n2").netns, IPv4Network("10.244.0.2/32")
    k.create_netns("fkvn-x", "", [])  # a namespace that is no pod's (ip netns add)
    k.apply([Op("add", Veth(netns=n2, name="hh", mtu=1500, mac="02:00:00:00:09:01", peer_netns="fkvn-x",
                            peer_name="hp", peer_mac="02:00:00:00:09:02")),
             Op("add", Route(netns=n2, dst=a_ip, gateway=None, dev="hh", scope="link"))])
    hand, peer = k.snapshot(n2).links["hh"], k.snapshot("fkvn-x").links["hp"]
    pairs = {(k.snapshot(n1).links["veth" + p].index, k.snapshot(lab.pod(p).netns).links["eth0"].index) for p in "ab"}
    assert (hand.index, hand.peer) in pairs and peer.index == hand.peer  # the report's: a's or b's pair (ADD order)
    st = state_mod.load_state(lab.name)
    drift = lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift
    assert {d.split(" in ")[0] for d in drift} == {"extra: link hh", f"extra: route {a_ip} dev hh"}, drift
    up(lab, k)
    assert "hh" not in k.snapshot(n2).links and "vethc" in k.snapshot(n2).links
    assert {"veth" + p for p in "ab"} <= set(k.snapshot(n1).links)
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    k.delete_netns("fkvn-x")
