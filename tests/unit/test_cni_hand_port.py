"""Which node devices a bridge plugin's chain made, when its result names only the pod's eth0 and the conflist
names no bridge (QA q38 #2, #3), against a fake plugin and the fake kernel.

The plugin (as /tmp's small bridge plugins do, or Debian's bridge with its ``bridge`` key under a wrapper's
``delegate``) makes its bridge ``fkhb0`` with the pods' gateway address at the node's first ADD, and each pod's
veth as a port of it. #3: status called the bridge and its address extra and `up` deleted it, cutting every pod
off. #2: a veth added by hand as a port of that bridge (its peer in the node, or a pod's interface its chain was
not asked for) was theirs as a port, with the /32 route on it hijacking a pod: "all as planned", `up` "nothing to
change". The real plugins in real namespaces are tests/integration/test_cni_bridge_ports.py's.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv4Network

import pytest

from cni_fakes import VethPlugins, cni_topo, kernel_lab, up
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Address, Bridge, Route, Veth
from netlab.realize import state as state_mod

TOPO = cni_topo("fkbp") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""
BRIDGE = "fkhb0"


class Plugins(VethPlugins):
    """Stands in for invoke.exec_plugin: a bridge plugin whose bridge name is its own and whose 1.0.0 result
    names the pod's eth0 only."""

    prefix = "hb"

    def add(self, pod, ip, env, *, node_netns, netns, host):
        ops = [] if BRIDGE in self.kernel.snapshot(node_netns).links else [
            Op("add", Bridge(netns=node_netns, name=BRIDGE, mtu=1500, mac="02:00:00:00:00:01")),
            Op("add", Address(netns=node_netns, dev=BRIDGE, address=IPv4Interface("10.244.0.1/24")))]
        self.kernel.apply(ops + [
            Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1], peer_netns=netns,
                           peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1], master=BRIDGE)),
            Op("add", Address(netns=netns, dev="eth0", address=IPv4Interface(f"{ip}/24")))])
        return {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"address": f"{ip}/24", "gateway": "10.244.0.1", "interface": 0}]}


@pytest.fixture
def world(tmp_path, monkeypatch):
    with kernel_lab(tmp_path, monkeypatch, TOPO, Plugins) as (lab, k):
        yield lab, k
        teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def drift(lab, k):
    return lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift


def test_a_bridge_no_name_gives_is_the_plugins_when_their_pods_veths_are_its_ports(world):
    lab, k = world
    up(lab, k)
    node = lab.node("n1").netns
    assert drift(lab, k) == []  # "extra: link fkhb0 in fkbp-n1 (bridge)", and its gateway address
    for _ in range(2):
        assert not [a for a in up(lab, k).fixed if BRIDGE in a]  # "del link fkhb0": every pod cut off
        links = k.snapshot(node).links
        assert BRIDGE in links and links["hba"].master == links[BRIDGE].index
    assert drift(lab, k) == []


@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize("peer", ["node", "pod"])
def test_a_hand_veth_added_as_a_port_of_the_plugins_bridge_and_its_route_are_extra(world, tmp_path, peer, named):
    lab, k = world
    if named:  # the conflist names the bridge (its `bridge` key): theirs from the first ADD on, as before
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net",
                                                           "plugins": [{"type": "chain", "bridge": BRIDGE}]}))
        lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    up(lab, k)
    node, a = lab.node("n1").netns, lab.pod("a").netns
    b_ip = IPv4Network(f"{lab.pod('b').ip}/32")
    # its peer in the node itself, or a's eth1 (a pod of the node, but no interface its chain was asked for)
    k.apply([Op("add", Veth(netns=node, name="hx0", mtu=1500, mac="02:00:00:00:09:01", master=BRIDGE,
                            peer_netns=node if peer == "node" else a, peer_name="hx1" if peer == "node" else "eth1",
                            peer_mac="02:00:00:00:09:02")),
             Op("add", Route(netns=node, dst=b_ip, gateway=None, dev="hx0", scope="link"))])
    found = drift(lab, k)
    want = {"extra: link hx0", f"extra: route {b_ip} dev hx0"} | ({"extra: link hx1"} if peer == "node" else set())
    assert {d.split(" in ")[0] for d in found} == want, found  # [] ("all as planned"), or only hx1
    fixed = up(lab, k).fixed
    assert any("del link hx0" in f for f in fixed) and not [f for f in fixed if "hba" in f or "hbb" in f], fixed
    links = k.snapshot(node).links
    assert "hx0" not in links and {BRIDGE, "hba", "hbb"} <= set(links)
    assert not [r for r in k.snapshot(node).routes if r.dst == str(b_ip.network_address) and r.table == 254]
    assert drift(lab, k) == []
