"""What the CNI lifecycle tests fake (no root, no plugin run): a conflist lab's folder, its world (state folder,
plugins, namespaces), a plugin's ADD answer, and `up` with the CNI feature."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from netlab.cni import attach, changed, lifecycle, runtime, sandbox_ns
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import Lab, resolve
from netlab.model.load import load_topology
from netlab.plan.resources import Link
from netlab.realize import state_dir
from netlab.realize.state_dir import lab_dir
from netlab.realize.state_sum import SUM_FILE


def conflist_lab(tmp_path: Path, topo: str) -> None:
    """A lab's folder: t.yaml, net.conflist (one plugin, chain) and bin/ with loopback and chain, which are
    found, never run (a fake exec_plugin answers)."""
    (tmp_path / "bin").mkdir()
    for name in ("loopback", "chain"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net",
                                                       "plugins": [{"type": "chain"}]}))
    (tmp_path / "t.yaml").write_text(topo)


def add_result(pod: str, env: dict[str, str]) -> dict[str, Any]:
    """A plugin's ADD result: lo as loopback gives it, else a veth pair with the address CNI_ARGS' IP= asked for."""
    ip = dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";"))["IP"]
    if env["CNI_IFNAME"] == "lo":
        return {"cniVersion": "1.0.0", "interfaces": [{"name": "lo", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"address": "127.0.0.1/8", "interface": 0}]}
    pair = [{"name": "veth" + pod}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}]
    return {"cniVersion": "1.0.0", "interfaces": pair, "ips": [{"address": f"{ip}/24", "interface": 1}]}


@contextmanager
def cni_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, topo: str, exec_plugin: Callable[..., Any],
              conflist: dict[str, Any] | None = None) -> Iterator[None]:
    """A fixture's fake CNI world while it lasts: the labs' state under tmp_path/state, the lab's folder
    (conflist_lab, its net.conflist then ``conflist`` where given), ``exec_plugin`` run for every plugin call, and
    every pod's namespace taken for a mount."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    state_dir._checked.clear()
    conflist_lab(tmp_path, topo)
    if conflist is not None:
        (tmp_path / "net.conflist").write_text(json.dumps(conflist))
    monkeypatch.setattr(runtime, "exec_plugin", exec_plugin)
    # A pod's first CHECK since its ADD that fails is compared with that ADD's result (cni/first_check.py), which a
    # fake world's pods are not made to match: such a failure is drift here, as any later one (the comparison's own
    # tests, tests/unit/test_cni_first_check.py, set what it finds)
    monkeypatch.setattr(changed, "as_added", lambda *args: False)
    monkeypatch.setattr(lifecycle, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(attach, "is_netns_mount", lambda name: True)
    # a retried ADD's namespace is made anew through the live kernel: a test that wants it passes its own (renew's
    # kernel=); the others' retries keep theirs
    monkeypatch.setattr(sandbox_ns, "renew", lambda lab, state, pods: ([], {}))
    yield
    state_dir._checked.clear()


@contextmanager
def kernel_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, topo: str,
               plugins_of: Callable[[FakeKernel], Any]) -> Iterator[tuple[Lab, FakeKernel]]:
    """cni_world with the plugins ``plugins_of`` gives for a new fake kernel: the lab of ``topo`` and that kernel."""
    k = FakeKernel()
    with cni_world(tmp_path, monkeypatch, topo, plugins_of(k)):
        yield lab_of(tmp_path), k


def kernel_lab_world(topo: str, plugins_of: Callable[[FakeKernel], Any]) -> Any:
    """A test module's ``world`` fixture: kernel_lab's (lab, kernel) for ``topo`` and ``plugins_of``."""
    @pytest.fixture(name="world")
    def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Lab, FakeKernel]]:
        with kernel_lab(tmp_path, monkeypatch, topo, plugins_of) as lab_k:
            yield lab_k
    return world


def add_only(log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
    """Stands in for invoke.exec_plugin as a chain that answers ADD with :func:`add_result`'s result and every other
    command (DEL, CHECK, VERSION) with nothing."""
    return add_result(pod, env) if command == "ADD" else None


def one_pod_lab(name: str) -> Any:
    """A test module's ``lab`` fixture: lab ``name`` (cni_topo's one node, n1) with pod a at 10.244.0.2, in
    cni_world with :func:`add_only`'s plugins."""
    @pytest.fixture(name="lab")
    def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
        with cni_world(tmp_path, monkeypatch, cni_topo(name) + "  - {name: a, node: n1, ip: 10.244.0.2}\n", add_only):
            yield lab_of(tmp_path)
    return lab


class VethPlugins:
    """Stands in for invoke.exec_plugin as a chain that gives each pod a veth pair: lo's ADD (and any CHECK, VERSION)
    answers a bare ``version`` result; DEL deletes the node's end ``prefix`` + pod where it is; ADD is ``add``'s,
    with the address CNI_ARGS' IP= asks for."""

    version, prefix = "1.0.0", "veth"

    def __init__(self, kernel: FakeKernel):
        self.kernel = kernel

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        if env["CNI_IFNAME"] == "lo" or command not in ("ADD", "DEL"):
            return {"cniVersion": self.version} if command == "ADD" else None
        netns, host = os.path.basename(env["CNI_NETNS"]), self.prefix + pod
        if command == "DEL":
            if host in self.kernel.snapshot(node_netns).links:
                self.kernel.apply([Op("del", Link(netns=node_netns, name=host, mtu=1500, mac=""))])
            return None
        ip = dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";"))["IP"]
        return self.add(pod, ip, env, node_netns=node_netns, netns=netns, host=host)

    def add(self, pod: str, ip: str, env: dict[str, str], *, node_netns: str, netns: str, host: str) -> dict[str, Any]:
        raise NotImplementedError


def lab_of(tmp_path: Path) -> Lab:
    """The lab of tmp_path/t.yaml, as it is in the file now."""
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def up(lab: Lab, k: Any, reconfigure: bool = False) -> Any:
    """`netlab up` of the lab with the CNI feature, on kernel k; the state it saved is then read as any other netlab
    reads it, checked whole by the schema (its sum, which let this process skip that, removed: QA qa58u 1, a CNI
    record's phase "terminated" the schema did not know was "corrupt" to every other reader)."""
    result = lab_up.up(lab, k, features=[ModuleFeature(lifecycle)], journal=Journal(k), reconfigure=reconfigure)
    sum_file = os.path.join(lab_dir(lab.name, create=False), SUM_FILE)
    if os.path.exists(sum_file):
        os.unlink(sum_file)
    return result


def cni_topo(name: str, nodes: int = 1) -> str:
    """The head of a CNI lab's t.yaml: lab ``name``, network from net.conflist with bin/, nodes n1.. (podCIDR
    10.244.<i-1>.0/24) and the ``pods:`` key, its list for the test to add."""
    listed = "".join(f"  - {{name: n{i + 1}, podCIDR: 10.244.{i}.0/24}}\n" for i in range(nodes))
    return f"name: {name}\nnetwork:\n  cni: {{conflist: net.conflist, binDir: bin}}\nnodes:\n{listed}pods:\n"
