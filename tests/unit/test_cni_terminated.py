"""A CNI lab's terminal pod (Completed or Error) has its sandbox's DEL run by the next up, as a kubelet's
StopPodSandbox does (cni/terminated.py): status says it until then, and nothing after; up never ADDs it again; get
pods keeps its IP; down DELs it once more with no namespace, as containerd's RemovePodSandbox does; a pod that runs
again (not terminal) is ADDed as a new sandbox. Through fake plugins and a fake kernel."""

from __future__ import annotations

import os
import threading

import pytest

from cni_fakes import add_result, cni_topo, cni_world, lab_of, up
from netlab.cni import lifecycle
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.lab import up as lab_up
from netlab.plan.build import build_plan
from netlab.realize import state as state_mod
from netlab.realize.attachments import attachments, detached, terminated_ips
from netlab.realize.state_dir import lab_dir
from netlab.realize.state_sum import SUM_FILE
from netlab.plan.resources import Loopback

TOPO = cni_topo("fktm", nodes=2) + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n2, ip: 10.244.1.3}
"""
LINE = ("cni: pod a has terminated (its containers exited for good: Completed or Error), but its sandbox's CNI DEL "
        "has not run: its plugins' state stays (its eth0, its address's lease, its hostPort rules); up runs it, as a "
        "kubelet stops a terminated pod's sandbox")


class Plugins:
    """Stands in for invoke.exec_plugin: records (pod, plugin, command, CNI_NETNS), fails where told; loopback's DEL
    sets the pod's lo down, as the real one does."""

    def __init__(self, kernel: FakeKernel):
        self.kernel = kernel
        self.calls: list[tuple[str, str, str, str]] = []
        self.fail: set[tuple[str, str, str]] = set()
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        plugin = plugin_path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append((pod, plugin, command, env["CNI_NETNS"]))
        if (pod, plugin, command) in self.fail:
            raise PluginFailed(f"pod {pod}: CNI plugin {plugin} {command}: failed (exit 1): no")
        if (plugin, command) == ("loopback", "DEL") and env["CNI_NETNS"]:
            ns = os.path.basename(env["CNI_NETNS"])
            self.kernel.apply([Op("set", Loopback(netns=ns, up=False), old=Loopback(netns=ns))])
        return add_result(pod, env) if command == "ADD" else None

    def of(self, pod: str, command: str | None = None) -> list[tuple[str, str, str]]:
        return [(p, c, n) for q, p, c, n in self.calls if q == pod and command in (None, c)]


@pytest.fixture
def world(tmp_path, monkeypatch):
    k = FakeKernel()
    plugins = Plugins(k)
    done: set[str] = set()  # the pods whose containers exited for good (workload/terminal.py's, faked)
    monkeypatch.setattr(lab_up, "terminal_pods", lambda lab, state: frozenset(done))
    monkeypatch.setattr(lab_status, "served", lambda lab, state: lab.with_terminal(frozenset(done)))
    with cni_world(tmp_path, monkeypatch, TOPO, plugins):
        yield lab_of(tmp_path), plugins, done, k


def _drift(lab_name, k):
    return lab_status.status(state_mod.load_state(lab_name), k, [ModuleFeature(lifecycle)]).drift


def test_up_dels_a_terminal_pod_s_sandbox_once_and_status_says_it_until_then(world):
    lab, plugins, done, k = world
    up(lab, k)
    done.add("a")
    plugins.calls.clear()
    assert _drift(lab.name, k) == [LINE]  # no CHECK of it either
    assert plugins.of("a") == []

    result = up(lab, k)
    assert plugins.of("a") == [("chain", "DEL", "/run/netns/fktm-a"), ("loopback", "DEL", "/run/netns/fktm-a")]
    assert any(line.startswith("ran the CNI DEL of terminated pod a's sandbox (its containers exited for good: "
                               "Completed or Error): a kubelet stops such a pod's sandbox") for line in result.fixed)
    st = state_mod.load_state(lab.name)
    prec = st.extra["cni"]["pods"]["a"]
    assert prec["phase"] == "terminated" and prec["attachment"]["ip"] == "10.244.0.2"
    assert "a" not in attachments(st) and "a" not in detached(st, lab)  # no pod side planned; not "detached"

    # the plan: nothing in a's namespace, which up removed after the DEL, as containerd's StopPodSandbox does
    plan = build_plan(lab.with_terminal(frozenset({"a"})))
    assert plan.stopped == frozenset({"fktm-a"})
    assert "fktm-a" not in plan.netns and not [r for r in plan.resources if r.netns == "fktm-a"]
    assert not k.netns_mounted("fktm-a") and "fktm-a" not in st.netns and k.netns_mounted("fktm-b")

    # the record as saved is a state any netlab of this revision reads, not only this process's trusted sum (QA
    # qa58u 1: the schema had no phase "terminated": the lab was "corrupt" to every other checkout, after any
    # change of netlab's model code, and once the sum was lost; cni_fakes.up removes the sum)
    assert not os.path.exists(os.path.join(lab_dir(lab.name), SUM_FILE))
    assert state_mod.load_state(lab.name).extra["cni"]["pods"]["a"]["phase"] == "terminated"

    plugins.calls.clear()
    assert _drift(lab.name, k) == []
    up(lab, k)  # nothing for it again: neither ADD nor DEL
    assert plugins.of("a") == []
    assert terminated_ips(st) == {"a": "10.244.0.2"}  # get pods' IP: the API keeps a Completed pod's podIP

    # down: the second DEL, with no namespace, as RemovePodSandbox stops the sandbox again (its netns closed)
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert plugins.of("a") == [("chain", "DEL", ""), ("loopback", "DEL", "")]
    assert plugins.of("b", "DEL") == [("chain", "DEL", "/run/netns/fktm-b"), ("loopback", "DEL", "/run/netns/fktm-b")]
    assert state_mod.load_state(lab.name) is None


def test_a_failed_del_of_a_terminal_pod_fails_up_and_runs_again(world):
    lab, plugins, done, k = world
    up(lab, k)
    done.add("a")
    plugins.fail.add(("a", "chain", "DEL"))
    with pytest.raises(ApplyFailed, match=r"^CNI DEL of pod a: CNI plugin chain DEL: failed \(exit 1\): no; pod a "
                                          r"has terminated \(its containers exited for good: Completed or Error\) and "
                                          r"the DEL of its stopped sandbox failed"):
        up(lab, k)
    prec = state_mod.load_state(lab.name).extra["cni"]["pods"]["a"]
    assert prec["phase"] == "added" and prec["del_failed"] is True
    assert _drift(lab.name, k)[0].startswith("cni: pod a has terminated (its containers exited for good: Completed "
                                             "or Error), but the CNI DEL of its stopped sandbox failed")
    plugins.fail.clear()
    plugins.calls.clear()
    assert any("ran the CNI DEL of terminated pod a's sandbox again" in line for line in up(lab, k).fixed)
    assert [c for _, c, _ in plugins.of("a")] == ["DEL", "DEL"]
    assert _drift(lab.name, k) == []


def test_a_terminated_pod_that_runs_again_is_added_as_a_new_sandbox(world):
    lab, plugins, done, k = world
    up(lab, k)
    first = state_mod.load_state(lab.name).extra["cni"]["pods"]["a"]["containerId"]
    done.add("a")
    up(lab, k)
    done.clear()  # its command changed: up starts it again, and it is not terminal
    assert _drift(lab.name, k) == [
        "missing: namespace fktm-a",  # removed with its stopped sandbox
        "cni: pod a terminated and up removed its stopped sandbox's network namespace, but it runs again now (its "
        "containers do not all exit for good: its command changed): up makes its namespace again and ADDs a new "
        "sandbox"]
    plugins.calls.clear()
    assert "fktm-a" in up(lab, k).created_netns  # a new sandbox: its namespace made again, then ADDed
    assert [(p, c) for p, c, _ in plugins.of("a")] == [("loopback", "ADD"), ("chain", "ADD")]
    prec = state_mod.load_state(lab.name).extra["cni"]["pods"]["a"]
    assert prec["phase"] == "added" and prec["containerId"] != first
    assert _drift(lab.name, k) == []


def test_a_terminal_pod_s_namespace_unmounted_by_hand_leaves_no_placeholder_behind(world):
    """review57 5: a terminal pod's namespace unmounted by hand (`umount /run/netns/L-a`: its empty file stays) was
    forgotten by the state with its file left, which a later up making the pod again took for another's."""
    lab, plugins, done, k = world
    up(lab, k)
    done.add("a")
    k.ns.pop("fktm-a")  # unmounted: the namespace went, its mount point stays
    k.placeholders.add("fktm-a")
    up(lab, k)
    assert not k.netns_exists("fktm-a") and "fktm-a" not in state_mod.load_state(lab.name).netns
    done.discard("a")  # it runs again (its command changed): a new sandbox, its namespace made anew
    up(lab, k)
    assert k.netns_mounted("fktm-a")


def test_a_terminated_pod_that_runs_again_with_its_namespace_really_gone_is_not_called_deleted_under_it(world,
                                                                                                          monkeypatch):
    """QA late58 1: the pod's namespace, removed by up with its stopped sandbox, is gone from the machine too (the
    fixture's is_netns_mount says every namespace is mounted): status said "deleted under it: up runs the CNI DEL of
    its old sandbox", but up runs no second DEL; it makes the namespace and ADDs a new sandbox."""
    lab, plugins, done, k = world
    monkeypatch.setattr(lifecycle, "is_netns_mount", k.netns_mounted)
    up(lab, k)
    done.add("a")
    up(lab, k)
    done.clear()  # its command changed: it runs again
    assert _drift(lab.name, k) == [
        "missing: namespace fktm-a",
        "cni: pod a terminated and up removed its stopped sandbox's network namespace, but it runs again now (its "
        "containers do not all exit for good: its command changed): up makes its namespace again and ADDs a new "
        "sandbox"]
    plugins.calls.clear()
    up(lab, k)
    assert [(p, c) for p, c, _ in plugins.of("a")] == [("loopback", "ADD"), ("chain", "ADD")]  # no DEL
    assert _drift(lab.name, k) == []
