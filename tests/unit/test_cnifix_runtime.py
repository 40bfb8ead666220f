"""CNI_ARGS carry the pod's Kubernetes namespace; NETLAB_CNI_TIMEOUT is read when used and checked; a pod its
plugins attached keeps its address: status names an ``ip:`` change and up refuses it before any change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from cni_fakes import add_result, conflist_lab
from netlab.cni import conf as C
from netlab.cni import attach, invoke, lifecycle, runtime
from netlab.cni.invoke import CallLog
from netlab.errors import UsageError
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import teardown, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod, state_dir

TOPO = """name: fxu
network:
  cni: {conflist: net.conflist, binDir: bin}
namespaces: [{name: x}]
nodes:
  - {name: n1, podCIDR: 10.244.0.0/24}
pods:
  - {name: a, node: n1, ip: 10.244.0.2, namespace: x}
  - {name: b, node: n1}
"""


class Plugins:
    """Stands in for invoke.exec_plugin: records (pod, plugin, command, CNI_ARGS, timeout), answers ADD."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, str, float | None]] = []
        self.lock = threading.Lock()

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        with self.lock:
            self.calls.append((pod, plugin_path.rsplit("/", 1)[-1], command, env["CNI_ARGS"], timeout))
        return add_result(pod, env) if command == "ADD" else None


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.delenv("NETLAB_CNI_TIMEOUT", raising=False)
    state_dir._checked.clear()
    conflist_lab(tmp_path, TOPO)
    plugins = Plugins()
    monkeypatch.setattr(runtime, "exec_plugin", plugins)
    monkeypatch.setattr(lifecycle, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(attach, "is_netns_mount", lambda name: True)
    yield tmp_path, plugins
    state_dir._checked.clear()


def _load(tmp_path, text=TOPO):
    (tmp_path / "t.yaml").write_text(text)
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def _up(lab, kernel):
    return lab_up.up(lab, kernel, features=[ModuleFeature(lifecycle)], journal=Journal(kernel))


# --- CNI_ARGS -------------------------------------------------------------------------------------------------


def test_cni_args_name_the_pods_kubernetes_namespace(world):
    tmp_path, plugins = world
    lab = _load(tmp_path)
    assert dict(C.cni_args(lab.pod("a"), "c1", lab.pod("a").ip))["K8S_POD_NAMESPACE"] == "x"
    assert dict(C.cni_args(lab.pod("b"), "c2", lab.pod("b").ip))["K8S_POD_NAMESPACE"] == "default"
    _up(lab, FakeKernel())
    args = {(pod, cmd): dict(kv.split("=", 1) for kv in a.split(";")) for pod, _, cmd, a, _ in plugins.calls}
    assert args[("a", "ADD")]["K8S_POD_NAMESPACE"] == "x" and args[("a", "ADD")]["K8S_POD_NAME"] == "a"
    assert args[("b", "ADD")]["K8S_POD_NAMESPACE"] == "default"
    assert len(args[("a", "ADD")]["K8S_POD_INFRA_CONTAINER_ID"]) == 64


def test_the_cluster_dns_pod_is_in_kube_system(world):
    tmp_path, _ = world
    lab = _load(tmp_path, TOPO + "services:\n  - {name: s, selector: {app: w}, ports: [{port: 80}]}\n")
    dns = next(p for p in lab.pods if p.name == "kube-dns")
    assert dict(C.cni_args(dns, "c", dns.ip))["K8S_POD_NAMESPACE"] == "kube-system"


# --- NETLAB_CNI_TIMEOUT ---------------------------------------------------------------------------------------


def test_importing_netlab_with_a_bad_timeout_does_not_fail():
    env = dict(os.environ, NETLAB_CNI_TIMEOUT="abc")
    proc = subprocess.run([sys.executable, "-c", "import netlab.features, netlab.cni.invoke"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "-0.5", "1e999",
                                   "1e12", "99999999999999999999", "86400.5"])  # more than poll() waits: QA q28 4
def test_a_bad_timeout_is_a_usage_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", value)
    with pytest.raises(UsageError) as exc:
        invoke.cni_timeout()
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert "NETLAB_CNI_TIMEOUT" in msg and "positive number of seconds" in msg
    assert invoke.cni_timeout(lenient=True) == invoke.DEFAULT_TIMEOUT


@pytest.mark.parametrize("value,seconds", [(None, 20.0), ("", 20.0), ("2", 2.0), ("0.5", 0.5), (" 7 ", 7.0),
                                                 ("86400", 86400.0)])
def test_a_good_timeout_is_read_when_used(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("NETLAB_CNI_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("NETLAB_CNI_TIMEOUT", value)
    assert invoke.cni_timeout() == seconds


def test_exec_plugin_takes_the_deadline_at_call_time(tmp_path, monkeypatch):
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "0.3")
    with pytest.raises(invoke.PluginFailed, match=r"the call's deadline, 0.3 s \(NETLAB_CNI_TIMEOUT\)"):
        invoke.exec_plugin(CallLog(None), pod="p", network="n", plugin_path=str(hang), command="VERSION", conf={},
                           env={}, node_netns=None)
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "-1")
    with pytest.raises(UsageError):
        invoke.exec_plugin(CallLog(None), pod="p", network="n", plugin_path=str(hang), command="VERSION", conf={},
                           env={}, node_netns=None)


def test_up_and_status_of_a_cni_lab_refuse_a_bad_timeout_before_any_change(world, monkeypatch):
    tmp_path, plugins = world
    lab = _load(tmp_path)
    k = FakeKernel()
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "abc")
    with pytest.raises(UsageError, match="NETLAB_CNI_TIMEOUT"):
        _up(lab, k)
    assert not k.ns and state_mod.load_state(lab.name) is None and not plugins.calls
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "3")
    _up(lab, k)
    assert {t for *_, t in plugins.calls} == {3.0}
    st = state_mod.load_state(lab.name)
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "0")
    with pytest.raises(UsageError, match="NETLAB_CNI_TIMEOUT"):
        lab_status.status(st, k, [ModuleFeature(lifecycle)])
    plugins.calls.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])  # down must finish: DEL with the default deadline
    assert plugins.calls and {t for *_, t in plugins.calls} == {invoke.DEFAULT_TIMEOUT}
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_a_builtin_lab_never_reads_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setenv("NETLAB_CNI_TIMEOUT", "abc")
    state_dir._checked.clear()
    (tmp_path / "t.yaml").write_text("name: fxb\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n")
    lab = resolve(load_topology(str(tmp_path / "t.yaml")))
    k = FakeKernel()
    _up(lab, k)
    st = state_mod.load_state(lab.name)
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    state_dir._checked.clear()


# --- a pod's ip: changed in the file ----------------------------------------------------------------------------


def test_a_changed_ip_is_named_by_status_and_refused_by_up_before_any_change(world):
    tmp_path, plugins = world
    lab = _load(tmp_path)
    k = FakeKernel()
    _up(lab, k)
    st = state_mod.load_state(lab.name)
    moved = _load(tmp_path, TOPO.replace("ip: 10.244.0.2", "ip: 10.244.0.50"))
    # status -t FILE: the state with the file's topology
    from dataclasses import replace
    against = replace(st, topology=moved.topo.model_dump(mode="json", by_alias=True, exclude_none=True))
    drift = lab_status.status(against, k, [ModuleFeature(lifecycle)]).drift
    assert any("pod a has 10.244.0.2" in d and "ip 10.244.0.50" in d for d in drift), drift
    st = state_mod.load_state(lab.name)  # as that status left it (it records the pods' first CHECK: first_check.py)
    before = json.dumps(st.topology, sort_keys=True), json.dumps(st.extra, sort_keys=True)
    plugins.calls.clear()
    with pytest.raises(UsageError) as exc:
        _up(moved, k)
    assert exc.value.exit_code == 2 and "pod a's ip changes from 10.244.0.2 to 10.244.0.50" in str(exc.value)
    assert "take the pod out of the file" in str(exc.value)
    assert not plugins.calls  # no DEL, no ADD: nothing changed
    st = state_mod.load_state(lab.name)
    assert (json.dumps(st.topology, sort_keys=True), json.dumps(st.extra, sort_keys=True)) == before
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift == []
    # the way out it names: out of the file, up (DEL), back with the new ip, up (ADD with it)
    _up(_load(tmp_path, TOPO.replace("  - {name: a, node: n1, ip: 10.244.0.2, namespace: x}\n", "")), k)
    _up(moved, k)
    assert state_mod.load_state(lab.name).resolved().pod("a").ip.exploded == "10.244.0.50"
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_a_pod_without_ip_keeps_the_address_it_was_attached_with(world):
    tmp_path, plugins = world
    lab = _load(tmp_path)
    k = FakeKernel()
    _up(lab, k)
    st = state_mod.load_state(lab.name)
    # a moves to .3, so b (no ip:) is planned at .2 now: only a is named; b keeps its lease, as host-local does
    renumbered = _load(tmp_path, TOPO.replace("ip: 10.244.0.2", "ip: 10.244.0.3"))
    assert lifecycle.readdressed(renumbered, st) == [("a", "10.244.0.2", "10.244.0.3")]
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
