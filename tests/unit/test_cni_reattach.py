"""A pod's re-attach and a failed ADD, as the CNI spec orders them, against fake plugins and the fake kernel (QA qc).

A re-attach whose DEL fails stops there (no second ADD without a DEL between), keeps the pod's attachment (a later
up or down runs DEL again) and says the DEL; a failed ADD is followed by the DEL of the pod's chains; the plugins'
node-side devices stay theirs. The real plugins in real namespaces are tests/integration/test_cni_bench.py's.
"""

from __future__ import annotations

import threading

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed, netlab_command
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize import state as state_mod
from netlab.realize.attachments import plugin_made, pod_records

TOPO = cni_topo("fkqc") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: records each call, answers ADD, fails where told."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, str]] = []
        self.fail: set[tuple[str, str, str]] = set()  # (pod, plugin, command)
        self.fail_after_add: set[tuple[str, str, str]] = set()  # the same, once the pod had an ADD since clear()
        self.broken: set[str] = set()  # pods whose chain's CHECK fails until their next ADD (which mends them)
        self.runtime_config: list[tuple[str, str, str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        with self.lock:
            added = any(q == pod and c == "ADD" for q, _, c, _ in self.calls)
            if command == "ADD":
                self.broken.discard(pod)
            elif command == "CHECK" and plugin == "chain" and pod in self.broken:
                raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
            self.calls.append((pod, plugin, command, env["CNI_IFNAME"]))
            self.runtime_config.append((pod, plugin, command, conf.get("runtimeConfig")))
        if (pod, plugin, command) in self.fail or (added and (pod, plugin, command) in self.fail_after_add):
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
        return add_result(pod, env) if command == "ADD" else None

    def of(self, pod):
        return [(p, c, i) for q, p, c, i in self.calls if q == pod and c != "CHECK"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Plugins()
    with cni_world(tmp_path, monkeypatch, TOPO, plugins, conflist={"cniVersion": "1.0.0", "name": "net", "plugins": [
            {"type": "chain", "capabilities": {"ipRanges": True}}]}):  # as bridge + host-local take the node's range
        yield lab_of(tmp_path), plugins


DEL_BOTH = [("chain", "DEL", "eth0"), ("loopback", "DEL", "lo")]
ADD_BOTH = [("loopback", "ADD", "lo"), ("chain", "ADD", "eth0")]


def test_a_re_attach_whose_del_fails_stops_there_and_keeps_the_attachment(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    before = pod_records(state_mod.load_state(lab.name))["a"]
    plugins.calls.clear()
    plugins.broken.add("a")
    plugins.fail |= {("a", "chain", "DEL")}
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value) == (
        "CNI DEL of pod a: CNI plugin chain DEL: failed (exit 1): no; so pod a was not re-attached (CHECK said: pod a: "
        "CNI plugin chain CHECK: failed (exit 1): no): it keeps its attachment, and the next up or down runs DEL "
        "again; rolled back")
    assert plugins.of("a") == [("chain", "DEL", "eth0")]  # no ADD after the failed DEL (loopback got a second one)
    assert pod_records(state_mod.load_state(lab.name))["a"] == before  # still "added", with its attachment
    plugins.fail.discard(("a", "chain", "DEL"))
    plugins.calls.clear()
    result = up(lab, k)  # the next up runs DEL again, then ADD
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH and any(f.startswith("re-attached pod a ") for f in result.fixed)
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_failed_re_add_is_followed_by_del_and_the_plugins_devices_stay_theirs(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK"), ("a", "chain", "ADD")}
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    # The ADD that would restore the pod as it was (the same config) fails too: the pod is left detached, said so
    assert str(exc.value) == (
        "pod a: CNI plugin chain ADD: failed (exit 1): no; its DEL ran: pod a is not attached; then its ADD with the "
        "config it had before failed too: CNI plugin chain ADD: failed (exit 1): no; rolled back, but for pod a, left "
        "detached (no eth0: the DEL before its ADD cannot be undone; "
        f"`{netlab_command('up --lab fkqc')}` attaches it again)")
    # each failed ADD got its DEL (it got none)
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH + DEL_BOTH + ADD_BOTH + DEL_BOTH
    # That DEL has no cached result to take the ADD's capability arguments from: the record gives them (host-local's
    # DEL without ipRanges fails, "no IP ranges specified").
    chain = [(c, rc) for p, n, c, rc in plugins.runtime_config if (p, n) == ("a", "chain") and c != "CHECK"]
    assert chain[-2:] == [(c, {"ipRanges": [[{"subnet": "10.244.0.0/24"}]]}) for c in ("ADD", "DEL")]
    st = state_mod.load_state(lab.name)
    assert pod_records(st)["a"]["phase"] == "deleted"
    # The node-side device the plugins' result named is still theirs (status called it extra and up deleted it).
    assert "vetha" in plugin_made(lab, st)["fkqc-n1"]
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == [
        "cni: pod a is not attached through CNI (up attaches it)"]
    plugins.fail = {("a", "chain", "DEL")}
    plugins.calls.clear()
    up(lab, k)  # nothing to DEL first: DEL ran already
    assert plugins.of("a") == ADD_BOTH and pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "added"
    plugins.fail.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_failed_add_whose_del_fails_too_is_said_and_deleted_again(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK"), ("a", "chain", "ADD")}
    plugins.fail_after_add.add(("a", "loopback", "DEL"))
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value) == ("pod a: CNI plugin chain ADD: failed (exit 1): no; then its DEL failed too: CNI plugin "
                              "loopback DEL: failed (exit 1): no (the next up or down runs DEL again); rolled back")
    assert pod_records(state_mod.load_state(lab.name))["a"]["phase"] == "adding"
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH + DEL_BOTH
    plugins.fail.clear()
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert plugins.of("a") == DEL_BOTH


class Killed(BaseException):
    """The process killed there: nothing after it runs (no rollback, no state write)."""


def test_a_re_attach_cut_short_after_its_del_leaves_a_record_that_says_the_pod_is_detached(world, monkeypatch):
    """QA q10 2: a watcher (or up) killed after a re-attach's DEL, before its ADD, left the record "added": status
    said only "the topology changed its hostPorts", get pods Running, while the pod had no eth0. The record says
    "detaching" before the DEL (write-ahead): status names the detached pod, the next up DELs it again and ADDs it."""
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    plugins.calls.clear()
    plugins.fail |= {("a", "chain", "CHECK")}

    def fault_point(name):
        if name == "cni-detached" and killing:
            raise Killed()

    killing = True

    monkeypatch.setattr(lifecycle.testhooks, "fault_point", fault_point)
    with pytest.raises(Killed):
        lifecycle.start(lab, state_mod.load_state(lab.name))
    assert plugins.of("a") == DEL_BOTH
    st = state_mod.load_state(lab.name)  # as the killed run left it on disk
    assert pod_records(st)["a"]["phase"] == "detaching"
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == [
        "cni: pod a is detached (a re-attach was cut short: its CNI DEL ran, its ADD did not; it has no eth0); "
        "up attaches it"]
    killing = False
    plugins.fail.clear()
    plugins.calls.clear()
    result = up(lab, k)
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH  # DEL again (the spec allows it), then the ADD it never had
    assert any(f.startswith("re-attached pod a through CNI (an earlier re-attach was cut short") for f in result.fixed)
    st = state_mod.load_state(lab.name)
    assert pod_records(st)["a"]["phase"] == "added"
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
