"""What a CNI chain makes on a node stays the plugins' when its result does not name it (QA q24 #1), against fake
plugins and the fake kernel.

A 0.1.0/0.2.0 result has no ``interfaces`` (netlab reads it as libcni does: ip4, ip6, dns), and a 1.0.0 one may
list none: the host end of the pod's veth, and the route the plugin put on it, were "extra" to status, `up` (and
`up --watch`) deleted them, and the pod was cut off. On a real node nothing but the plugin's DEL takes them. What
netlab itself makes on the node (its eth0 to the underlay) stays its drift. The real plugins in real namespaces are
tests/integration/test_cni_unnamed_veth.py's.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Interface, IPv4Network

import pytest

from cni_fakes import conflist_lab
from netlab.cni import lifecycle, runtime
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Address, Link, Route, Veth
from netlab.realize import state as state_mod, state_dir
from netlab.realize.attachments import node_side

TOPO = """name: fkun
network:
  cni: {conflist: net.conflist, binDir: bin}
nodes:
  - {name: n1, podCIDR: 10.244.0.0/24}
pods:
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: the chain's ADD makes a veth pair as ptp does (the pod's eth0 with its
    address, the node's end with a host route to the pod) and answers with a 0.2.0 result (ip4 only)."""

    def __init__(self, kernel: FakeKernel):
        self.kernel = kernel

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        if env["CNI_IFNAME"] == "lo" or command not in ("ADD", "DEL"):
            return {"cniVersion": "0.2.0"} if command == "ADD" else None
        netns, host = os.path.basename(env["CNI_NETNS"]), "veth" + pod
        if command == "DEL":
            if host in self.kernel.snapshot(node_netns).links:
                self.kernel.apply([Op("del", Link(netns=node_netns, name=host, mtu=1500, mac=""))])
            return None
        ip = dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";"))["IP"]
        self.kernel.apply([
            Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1], peer_netns=netns,
                           peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1])),
            Op("add", Address(netns=netns, dev="eth0", address=IPv4Interface(f"{ip}/24"))),
            Op("add", Route(netns=node_netns, dst=IPv4Network(f"{ip}/32"), gateway=None, dev=host, scope="link"))])
        return {"cniVersion": "0.2.0", "ip4": {"ip": f"{ip}/24", "gateway": "10.244.0.1"}}


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    state_dir._checked.clear()
    conflist_lab(tmp_path, TOPO)
    k = FakeKernel()
    monkeypatch.setattr(runtime, "exec_plugin", Plugins(k))
    monkeypatch.setattr(lifecycle, "is_netns_mount", lambda name: True)
    yield resolve(load_topology(str(tmp_path / "t.yaml"))), k
    state_dir._checked.clear()


def up(lab, k):
    return lab_up.up(lab, k, features=[ModuleFeature(lifecycle)], journal=Journal(k))


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


def test_only_devices_netlab_does_not_make_on_a_node_are_the_plugins():
    planned = [Link(netns="n", name="eth0", mtu=1500, mac="")]
    route = lambda dev: Route(netns="n", dst=IPv4Network("10.9.0.0/24"), gateway=None, dev=dev)  # noqa: E731
    assert node_side(Link(netns="n", name="veth1c8310a0", mtu=1500, mac=""), planned)
    assert node_side(route("veth1c8310a0"), planned)
    assert not node_side(Link(netns="n", name="eth0", mtu=1500, mac=""), ())  # netlab's, even when unplanned
    assert not node_side(Link(netns="n", name="flannel.1", mtu=1450, mac=""), planned)
    assert not node_side(route("eth0"), planned)
    assert not node_side(route(None), planned)  # a blackhole route: no device


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
