"""A pod whose CNI ADD a plugin failed of itself is DELed, then ADDed again as a new sandbox (cni/retry.py), as
containerd tears a failed sandbox's network down and the kubelet creates the sandbox again; fake plugins and the
fake kernel. The firewall plugin's race on a node's first ADDs (CHAIN_USER_ADD failed (File exists): chain
CNI-ADMIN) was such a failure, and failed `up`. The real plugins are tests/integration/test_cni_retry_live.py's.
"""

from __future__ import annotations

import os
import threading

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle, retry, runtime, sandbox_ns
from netlab.cni.invoke import CallLog, PluginFailed, exec_plugin
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records

TOPO = cni_topo("fkrt") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""
RENEW = sandbox_ns.renew  # cni_fakes.cni_world puts a stand-in in its place
RACE = "CHAIN_USER_ADD failed (File exists): chain CNI-ADMIN"


class Plugins:
    """Stands in for invoke.exec_plugin: each call's (pod, plugin, command, CNI_CONTAINERID); the chain's ADD of a
    pod in ``failing`` fails that many more times, as the plugin says it (``plugin_said``: it exited 1), or as
    netlab says a result it refuses (``said_by_netlab``)."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, str]] = []
        self.failing: dict[str, int] = {}
        self.said_by_netlab = False
        self.broken: set[str] = set()  # pods whose chain's CHECK fails (up re-attaches them)
        self.fail_del: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append((pod, plugin, command, env["CNI_CONTAINERID"]))
            if (plugin, command) == ("chain", "CHECK") and pod in self.broken:
                raise PluginFailed(f"pod {pod}: CNI plugin chain CHECK: failed (exit 1): no")
            if (plugin, command) == ("chain", "DEL") and pod in self.fail_del:
                raise PluginFailed(f"pod {pod}: CNI plugin chain DEL: failed (exit 1): no")
            if (plugin, command) == ("chain", "ADD") and self.failing.get(pod):
                self.failing[pod] -= 1
                failed = PluginFailed(f"pod {pod}: CNI plugin chain ADD: failed (exit 1): {RACE}")
                failed.plugin_said = not self.said_by_netlab
                raise failed
        return add_result(pod, env) if command == "ADD" else None

    def of(self, pod: str) -> list[tuple[str, str, str]]:
        return [(p, c, cid) for q, p, c, cid in self.calls if q == pod and c != "CHECK"]


def one_try(cid: str, passed: bool = False) -> list[tuple[str, str, str]]:
    """A pod's calls of one sandbox's ADD: loopback's, the chain's; when the chain's failed, the DEL of both."""
    add = [("loopback", "ADD", cid), ("chain", "ADD", cid)]
    return add if passed else add + [("chain", "DEL", cid), ("loopback", "DEL", cid)]


def sandboxes(calls: list[tuple[str, str, str]]) -> list[str]:
    """The CNI_CONTAINERIDs of the calls, each once, in order."""
    return list(dict.fromkeys(cid for _, _, cid in calls))


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Plugins()
    monkeypatch.setattr(retry, "RETRY_WAIT", 0.0)
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        yield lab_of(tmp_path), plugins


def test_a_failed_add_is_deleted_then_added_again_as_a_new_sandbox_and_up_says_it(world):
    lab, plugins = world
    plugins.failing["b"] = 1
    k = FakeKernel()
    result = up(lab, k)
    first, second = sandboxes(plugins.of("b"))
    assert first != second and len(second) == 64  # a new sandbox: its own id
    assert plugins.of("b") == one_try(first) + one_try(second, passed=True)
    assert "attached pod b through CNI (10.244.0.3)" in result.fixed
    assert result.warnings == [
        f"cni: pod b's first ADD failed: CNI plugin chain ADD: failed (exit 1): {RACE}; its DEL ran, and the ADD of "
        "a new sandbox (a new CNI_CONTAINERID) passed on try 2 of 3, as the kubelet creates a pod's sandbox again "
        "after a FailedCreatePodSandBox (`netlab cni log b` has every call)"]
    assert plugins.of("a") == one_try(sandboxes(plugins.of("a"))[0], passed=True)  # a passed: tried once
    prec = pod_records(state_mod.load_state(lab.name))["b"]
    assert (prec["phase"], prec["containerId"]) == ("added", second)
    assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift == []
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert plugins.of("b") == [("chain", "DEL", second), ("loopback", "DEL", second)]


def test_an_add_that_fails_every_try_fails_up_naming_its_tries(world):
    lab, plugins = world
    plugins.failing["b"] = retry.ADD_TRIES
    k = FakeKernel()
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value).startswith(
        f"pod b: CNI plugin chain ADD: failed (exit 1): {RACE}; its DEL ran: pod b is not attached (its ADD was "
        "tried 3 times, each a new sandbox after the DEL of the one before, as the kubelet creates a pod's sandbox "
        "again after a FailedCreatePodSandBox; every try failed so); rolled back")
    ids = sandboxes(plugins.of("b"))
    assert len(ids) == 3 and plugins.of("b") == one_try(ids[0]) + one_try(ids[1]) + one_try(ids[2])
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_a_failure_netlab_says_nor_one_whose_del_failed_is_tried_again(world):
    lab, plugins = world
    plugins.failing["b"], plugins.said_by_netlab = 1, True  # a result netlab refuses: the same chain gives it again
    with pytest.raises(ApplyFailed, match=r"^pod b: CNI plugin chain ADD: failed \(exit 1\): CHAIN_USER_ADD failed "
                                          r"\(File exists\): chain CNI-ADMIN; its DEL ran: pod b is not attached; "
                                          r"rolled back"):
        up(lab, FakeKernel())
    assert len(sandboxes(plugins.of("b"))) == 1
    plugins.calls.clear()
    plugins.failing["b"], plugins.said_by_netlab = 1, False
    plugins.fail_del.add("b")  # no second ADD before a DEL passes
    with pytest.raises(ApplyFailed, match=r"; then its DEL failed too: "):
        up(lab, FakeKernel())
    assert [c for c in plugins.of("b") if c[1] == "ADD"] == [("loopback", "ADD", sandboxes(plugins.of("b"))[0]),
                                                              ("chain", "ADD", sandboxes(plugins.of("b"))[0])]


def test_a_re_attach_whose_new_sandboxes_all_fail_is_added_as_it_was_only_after_its_tries(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    was = pod_records(state_mod.load_state(lab.name))["b"]["containerId"]
    plugins.calls.clear()
    plugins.broken.add("b")  # its CHECK fails: up DELs it, then ADDs it
    plugins.failing["b"] = retry.ADD_TRIES  # every new sandbox fails; its ADD as it was passes
    with pytest.raises(ApplyFailed, match=r"every try failed so\); then pod b was attached again with the config it "
                                          r"had before"):
        up(lab, k)
    ids = sandboxes(plugins.of("b"))
    assert ids[0] == was and len(ids) == 4  # its DEL; three new sandboxes; then its ADD with the record it had
    assert plugins.of("b") == ([("chain", "DEL", was), ("loopback", "DEL", was)] + one_try(ids[1]) + one_try(ids[2])
                               + one_try(ids[3]) + one_try(was, passed=True))
    prec = pod_records(state_mod.load_state(lab.name))["b"]
    assert (prec["phase"], prec["containerId"]) == ("added", was)
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


@pytest.mark.parametrize("body, said", [
    ('echo \'{"code": 999, "msg": "CHAIN_USER_ADD failed (File exists)"}\'; exit 1', True),  # its own no
    ("kill -9 $$", True),  # it died (a crash): not netlab's doing
    ("sleep 30", False),  # killed at netlab's deadline: a second try costs it again
])
def test_only_a_plugins_own_failure_is_marked_for_a_new_sandbox(tmp_path, body, said):
    plugin = tmp_path / "plugin"
    plugin.write_text(f"#!/bin/sh\n{body}\n")
    plugin.chmod(0o755)
    with pytest.raises(PluginFailed) as exc:
        exec_plugin(CallLog(None), pod="p", network="n", plugin_path=str(plugin), command="ADD", conf={}, env={},
                    node_netns=None, timeout=0.5)
    assert exc.value.plugin_said is said



def test_a_new_sandbox_gets_its_namespace_made_anew_unless_something_runs_there(world, monkeypatch):
    """As containerd removes a failed sandbox's network namespace and the next sandbox gets a new one, what a plugin
    left in the pod's namespace is gone by the next try (QA cnr63 1); a namespace a process runs in is kept, said."""
    lab, plugins = world
    plugins.failing.update(a=1, b=1)
    k = FakeKernel()
    monkeypatch.setattr(sandbox_ns, "renew", lambda lab_, state, pods: RENEW(lab_, state, pods, kernel=k))
    monkeypatch.setattr(sandbox_ns.processes, "find_in_namespaces",
                        lambda names: {4242: n for n in names if n.endswith("-b")})
    monkeypatch.setattr(sandbox_ns.processes, "comm", lambda pid: "echo")
    seen: dict[str, list[tuple[object, bool]]] = {"fkrt-a": [], "fkrt-b": []}

    def leaving(log, **kw):  # the chain's ADD sees the namespace, and leaves something in it
        if kw["command"] == "ADD" and kw["plugin_path"].endswith("/chain"):
            ns = k.ns[os.path.basename(kw["env"]["CNI_NETNS"])]
            seen[ns.name].append((ns, "leftover" in ns.sysctls))
            ns.sysctls["leftover"] = "1"
        return plugins(log, **kw)

    monkeypatch.setattr(runtime, "exec_plugin", leaving)
    result = up(lab, k)
    (a1, a1_left), (a2, a2_left) = seen["fkrt-a"]
    assert a1 is not a2 and not a2_left  # a new namespace: nothing of the first try's
    (b1, _), (b2, b2_left) = seen["fkrt-b"]
    assert b1 is b2 and b2_left
    assert result.warnings[0] == (
        "cni: pod b's next ADD runs in the network namespace its failed ADD ran in (process 4242 (echo) runs in it, "
        "which the namespace's deletion would leave in the old one): what the plugins left in fkrt-b is still there")
    state = state_mod.load_state(lab.name)
    assert state.netns["fkrt-a"] == "created" and k.read_tag("fkrt-a") == k.read_tag("fkrt-n1")
    assert lab_status.status(state, k, [ModuleFeature(lifecycle)]).drift == []
