"""The bridge a CNI chain makes on a node stays the plugins' (QA cx 1), against fake plugins and the fake kernel.

A bridge plugin makes its bridge at the node's first ADD and never deletes it: when a later plugin of the chain
fails (the ADD fails, its DEL runs, the pod is not attached), and when the node's last pod goes (DEL takes the pod's
veth only), the bridge is still there, and netlab must neither call it extra nor delete it. The real plugins in real
namespaces are tests/integration/test_cni_bench.py's.
"""

from __future__ import annotations


import pytest

from cni_fakes import add_result, cni_topo, cni_world, up
from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Bridge
from netlab.realize import state as state_mod

TOPO = cni_topo("fkkd", nodes=2) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
"""
B_ON_N2 = "  - {name: b, node: n2, ip: 10.244.1.2}\n"


class Plugins:
    """Stands in for invoke.exec_plugin: the chain's ADD makes its bridge on the node (as Debian's bridge does, before
    any later plugin runs), then answers, or fails where told."""

    def __init__(self, kernel: FakeKernel):
        self.kernel, self.fail = kernel, set()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        if (plugin, command) == ("chain", "ADD") and "qcbr0" not in self.kernel.snapshot(node_netns).links:
            self.kernel.apply([Op("add", Bridge(netns=node_netns, name="qcbr0", mtu=1500, mac=None, up=True))])
        if (pod, plugin, command) in self.fail:
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
        return add_result(pod, env) if command == "ADD" else None


@pytest.fixture
def world(tmp_path, monkeypatch):
    k = FakeKernel()
    plugins = Plugins(k)
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist={"cniVersion": "1.0.0", "name": "net", "plugins": [
            {"type": "chain", "bridge": "qcbr0", "capabilities": {"ipRanges": True}}]}):
        yield tmp_path, k, plugins


def lab_of(tmp_path, pods=""):
    (tmp_path / "t.yaml").write_text(TOPO + pods)
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def node_devices(st):
    return st.extra["cni"].get("devices")


def has_bridge(k, node):
    return "qcbr0" in k.snapshot(f"fkkd-{node}").links


def test_the_bridge_of_a_failed_add_on_a_podless_node_is_never_extra_nor_deleted(world):
    tmp_path, k, plugins = world
    up(lab_of(tmp_path), k)
    plugins.fail.add(("b", "chain", "ADD"))
    with pytest.raises(ApplyFailed, match="its DEL ran: pod b is not attached; rolled back$"):
        up(lab_of(tmp_path, B_ON_N2), k)  # b is n2's first pod: its ADD made n2's bridge, then failed
    assert has_bridge(k, "n2")
    st = state_mod.load_state("fkkd")
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []  # "extra: link qcbr0 in fkkd-n2"
    assert node_devices(st) == {"fkkd-n1": ["qcbr0"], "fkkd-n2": ["qcbr0"]}
    up(lab_of(tmp_path), k)
    assert has_bridge(k, "n2")  # up deleted it
    plugins.fail.clear()
    up(lab_of(tmp_path, B_ON_N2), k)  # the plugin takes its bridge up again
    teardown.down("fkkd", k, [ModuleFeature(lifecycle)])


def test_the_bridge_stays_the_plugins_when_the_nodes_last_pod_goes(world):
    tmp_path, k, _ = world
    up(lab_of(tmp_path, B_ON_N2), k)
    (tmp_path / "t.yaml").write_text(TOPO.replace("  - {name: a, node: n1, ip: 10.244.0.2}\n", "").replace(
        "pods:\n", "pods: []\n"))
    up(resolve(load_topology(str(tmp_path / "t.yaml"))), k)  # a and b go: their DELs run
    assert has_bridge(k, "n1") and has_bridge(k, "n2")  # up deleted both
    st = state_mod.load_state("fkkd")
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    # A node that goes takes its bridge with it: nothing of it stays recorded.
    (tmp_path / "t.yaml").write_text("name: fkkd\nnetwork:\n  cni: {conflist: net.conflist, binDir: bin}\n"
                                     "nodes:\n  - {name: n1, podCIDR: 10.244.0.0/24}\npods: []\n")
    up(resolve(load_topology(str(tmp_path / "t.yaml"))), k)
    assert node_devices(state_mod.load_state("fkkd")) == {"fkkd-n1": ["qcbr0"]}
    teardown.down("fkkd", k, [ModuleFeature(lifecycle)])
