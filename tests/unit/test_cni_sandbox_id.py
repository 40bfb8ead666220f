"""A pod's CNI sandbox id (CNI_CONTAINERID), as containerd gives it, against fake plugins and the fake kernel.

containerd makes a new sandbox, with a new id, each time the kubelet (re)creates a pod's sandbox, and stops the old
one with its own id: its DEL hands the plugins the old namespace's path, or an empty CNI_NETNS once that namespace
is gone (StopPodSandbox: "Use empty netns path if netns is not available"; the CNI spec: DEL's CNI_NETNS is
optional). So does up for a pod whose namespace was deleted under it (the kubelet's SandboxChanged), and for a pod it
re-attaches (DEL, then ADD: a new sandbox); down DELs a pod whose namespace is gone with an empty CNI_NETNS. A
plugin's state keyed by the id (host-local's lease files hold it) follows: the real plugins are
tests/integration/test_cni_sandbox_id_live.py's.
"""

from __future__ import annotations

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import attach, lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records

TOPO = cni_topo("fksb") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: each call's (pod, plugin, command, CNI_CONTAINERID, CNI_NETNS)."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, str, str]] = []
        self.fail: set[tuple[str, str, str]] = set()  # (pod, plugin, command)

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        self.calls.append((pod, plugin, command, env["CNI_CONTAINERID"], env["CNI_NETNS"]))
        if (pod, plugin, command) in self.fail:
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
        return add_result(pod, env) if command == "ADD" else None

    def of(self, pod):
        return [(p, c, cid, ns) for q, p, c, cid, ns in self.calls if q == pod and c != "CHECK"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    plugins = Plugins()
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        yield lab_of(tmp_path), plugins


def sandbox(lab, pod):
    return pod_records(state_mod.load_state(lab.name))[pod]["containerId"]


def test_a_pod_whose_namespace_was_deleted_is_a_new_sandbox_and_its_old_one_is_deleted_with_its_own_id(
        world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    old, b = sandbox(lab, "a"), sandbox(lab, "b")
    k.delete_netns("fksb-a")  # ip netns del: the kubelet's SandboxChanged
    with monkeypatch.context() as m:  # the fake world takes every namespace for a mount: not this one now
        m.setattr(lifecycle, "is_netns_mount", lambda name: name != "fksb-a")
        drift = lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift
    assert "cni: pod a's network namespace is gone (deleted under it): up runs the CNI DEL of its old sandbox, " \
           "then ADDs a new one" in drift and not any("CHECK" in line for line in drift)
    plugins.calls.clear()
    result = up(lab, k)
    new = sandbox(lab, "a")
    assert new != old and len(new) == 64
    # The old sandbox's DEL with its own id and no namespace (it is gone), then the new one's ADD with a new id
    assert plugins.of("a") == [("chain", "DEL", old, ""), ("loopback", "DEL", old, ""),
                               ("loopback", "ADD", new, "/run/netns/fksb-a"), ("chain", "ADD", new, "/run/netns/fksb-a")]
    assert plugins.of("b") == [] and sandbox(lab, "b") == b
    assert "re-attached pod a through CNI (its network namespace was made anew: the CNI DEL of its old sandbox ran " \
           "with an empty CNI_NETNS, the ADD of a new one with a new CNI_CONTAINERID)" in result.fixed
    # the new sandbox's args name it (K8S_POD_INFRA_CONTAINER_ID), and its cached results follow its id
    rec = pod_records(state_mod.load_state(lab.name))["a"]
    assert ["K8S_POD_INFRA_CONTAINER_ID", new] in rec["args"]
    assert lab_status.status(state_mod.load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift == []
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert ("chain", "DEL", new, "/run/netns/fksb-a") in plugins.of("a")


def test_a_failed_del_of_the_old_sandbox_adds_no_new_one_and_the_next_up_runs_it_again(world):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    old = sandbox(lab, "a")
    k.delete_netns("fksb-a")
    plugins.calls.clear()
    plugins.fail.add(("a", "chain", "DEL"))
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert str(exc.value).startswith(
        "CNI DEL of pod a: CNI plugin chain DEL: failed (exit 1): no; so pod a's old sandbox (its network namespace was "
        "made anew) is not deleted and no new one was ADDed: the next up or down runs DEL again; rolled back")
    # no ADD: every call of pod a is its old sandbox's DEL (the rollback, which takes the namespace the run made,
    # tries it again)
    assert {c for c in plugins.of("a")} == {("chain", "DEL", old, "")}
    plugins.fail.clear()
    plugins.calls.clear()
    up(lab, k)
    new = sandbox(lab, "a")
    assert new != old
    assert plugins.of("a") == [("chain", "DEL", old, ""), ("loopback", "DEL", old, ""),
                               ("loopback", "ADD", new, "/run/netns/fksb-a"), ("chain", "ADD", new, "/run/netns/fksb-a")]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_re_attach_in_the_same_namespace_is_a_new_sandbox(world):
    """A failed CHECK never makes a kubelet re-ADD a sandbox; a new sandbox (new id) is what a re-attach is."""
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    old = sandbox(lab, "a")
    plugins.calls.clear()
    plugins.fail.add(("a", "chain", "CHECK"))
    up(lab, k)
    plugins.fail.clear()
    new = sandbox(lab, "a")
    assert new != old
    assert plugins.of("a") == [("chain", "DEL", old, "/run/netns/fksb-a"), ("loopback", "DEL", old, "/run/netns/fksb-a"),
                               ("loopback", "ADD", new, "/run/netns/fksb-a"), ("chain", "ADD", new, "/run/netns/fksb-a")]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_down_deletes_a_pod_whose_namespace_is_gone_with_an_empty_cni_netns(world, monkeypatch):
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    old = sandbox(lab, "a")
    k.delete_netns("fksb-a")
    monkeypatch.setattr(lifecycle, "is_netns_mount", lambda name: name != "fksb-a")
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert plugins.of("a") == [("chain", "DEL", old, ""), ("loopback", "DEL", old, "")]
    assert plugins.of("b")[0][3] == "/run/netns/fksb-b"


def test_every_pod_of_a_lab_has_its_own_sandbox_id(world):
    lab, _ = world
    up(lab, FakeKernel())
    assert sandbox(lab, "a") != sandbox(lab, "b")


def test_a_removed_pods_del_run_again_once_its_namespace_is_gone_hands_an_empty_cni_netns(world, tmp_path,
                                                                                          monkeypatch):
    """A removed pod whose first DEL failed (its namespace there then) keeps its record; up deletes its namespace,
    and the next up's DEL, run again, handed the plugins its old path (/run/netns/fksb-b, no namespace there), not
    the empty CNI_NETNS the spec asks for a namespace that is gone (containerd's StopPodSandbox). The plugins still
    get the DEL (host-local releases the lease)."""
    lab, plugins = world
    k = FakeKernel()
    up(lab, k)
    b = sandbox(lab, "b")
    (tmp_path / "t.yaml").write_text(TOPO.replace("  - {name: b, node: n1, ip: 10.244.0.3}\n", ""))
    smaller = lab_of(tmp_path)
    plugins.fail.add(("b", "chain", "DEL"))
    plugins.calls.clear()
    up(smaller, k)  # its DEL fails: the record stays, its namespace goes
    assert plugins.of("b") == [("chain", "DEL", b, "/run/netns/fksb-b")]
    plugins.fail.clear()
    plugins.calls.clear()
    for module in (lifecycle, attach):  # up deleted its namespace: none is mounted at its path now
        monkeypatch.setattr(module, "is_netns_mount", lambda name: name != "fksb-b")
    result = up(smaller, k)
    assert plugins.of("b") == [("chain", "DEL", b, ""), ("loopback", "DEL", b, "")]
    assert "ran the CNI DEL of removed pod b again: it succeeded" in result.fixed, result.fixed
    teardown.down(smaller.name, k, [ModuleFeature(lifecycle)])
