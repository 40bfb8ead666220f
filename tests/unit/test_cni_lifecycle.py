"""The CNI feature in the lab's lifecycle, against the fake kernel and a fake plugin runner (no root).

Order (loopback, then the chain; DEL the other way), the write-ahead record
that lets a rollback DEL a pod whose ADD failed, CHECK in status, DEL on down.
The real plugins in real namespaces are tests/integration/test_cni.py's.
"""

from __future__ import annotations

import threading

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.features import default_features
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize import state as state_mod

TOPO = cni_topo("fkcni", nodes=2) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n2, ip: 10.244.1.3}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: records each call, answers ADD with a result, fails where told."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, str]] = []
        self.fail: set[tuple[str, str, str]] = set()  # (pod, plugin, command)
        self.broken: set[str] = set()  # pods whose chain's CHECK fails until their next ADD (which mends them)
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append((pod, plugin, command, env["CNI_IFNAME"]))
        assert node_netns.startswith("fkcni-n")  # plugins run in the node's namespace
        if command == "ADD":
            self.broken.discard(pod)
        if (pod, plugin, command) in self.fail or (pod in self.broken and (plugin, command) == ("chain", "CHECK")):
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
        return add_result(pod, env) if command == "ADD" else None

    def of(self, pod: str) -> list[tuple[str, str, str]]:
        return [(p, c, i) for q, p, c, i in self.calls if q == pod]


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Plugins()
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        yield lab_of(tmp_path), plugins


def test_up_adds_loopback_then_the_chain_status_checks_and_down_deletes_in_reverse(world):
    lab, plugins = world
    k = FakeKernel()
    result = up(lab, k)
    assert sorted(a for a in result.fixed if a.startswith("attached")) == [
        "attached pod a through CNI (10.244.0.2)", "attached pod b through CNI (10.244.1.3)"]
    for pod in ("a", "b"):
        assert plugins.of(pod) == [("loopback", "ADD", "lo"), ("chain", "ADD", "eth0")]
    st = state_mod.load_state(lab.name)
    assert st.resolved().pod("a").host_veth == "vetha"  # the result names the host end
    plugins.calls.clear()
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    assert sorted(plugins.calls) == sorted([(p, n, "CHECK", i) for p in ("a", "b")
                                           for n, i in (("loopback", "lo"), ("chain", "eth0"))])
    plugins.fail.add(("b", "chain", "CHECK"))
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == [
        "cni: CHECK of pod b failed: pod b: CNI plugin chain CHECK: failed (exit 1): no"]
    cni = [f for f in default_features() if f.name == "cni"]  # as netlab runs it: a lab it concerns
    assert lab_status.status(st, k, cni).drift == [
        "cni: CHECK of pod b failed: pod b: CNI plugin chain CHECK: failed (exit 1): no"]
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    for pod in ("a", "b"):
        assert plugins.of(pod) == [("chain", "DEL", "eth0"), ("loopback", "DEL", "lo")]
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_a_failed_add_rolls_back_with_del_for_every_pod_it_began(world):
    lab, plugins = world
    plugins.fail.add(("b", "chain", "ADD"))
    k = FakeKernel()
    with pytest.raises(ApplyFailed, match=r"^pod b: CNI plugin chain ADD: failed \(exit 1\): no; its DEL ran: "
                                          r"pod b is not attached; rolled back \(and the lab's CNI log with it: "
                                          r"NETLAB_CNI_LOG=FILE keeps a copy of this run's calls\)$"):
        up(lab, k)
    # b's loopback was ADDed and its chain tried: both are DELed, last first, right after the failed ADD (the
    # rollback does not DEL them again), as a's are by the rollback.
    assert plugins.of("b") == [("loopback", "ADD", "lo"), ("chain", "ADD", "eth0"),
                               ("chain", "DEL", "eth0"), ("loopback", "DEL", "lo")]
    assert plugins.of("a")[-2:] == [("chain", "DEL", "eth0"), ("loopback", "DEL", "lo")]
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_up_again_checks_and_re_adds_only_the_pod_whose_check_fails(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.broken.add("a")
    result = up(lab, k)
    assert [a for a in result.fixed if "CNI" in a] == [
        "re-attached pod a through CNI (CHECK said: pod a: CNI plugin chain CHECK: failed (exit 1): no)"]
    assert [c for c in plugins.of("a") if c[1] != "CHECK"] == [
        ("chain", "DEL", "eth0"), ("loopback", "DEL", "lo"), ("loopback", "ADD", "lo"), ("chain", "ADD", "eth0")]
    assert [c[1] for c in plugins.of("b")] == ["CHECK", "CHECK"]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
