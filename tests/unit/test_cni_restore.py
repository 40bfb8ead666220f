"""A re-attach whose re-ADD fails ADDs the pod again with exactly what it had before (fake plugins, fake kernel).

A pod whose hostPort changed is DELed with what it was given and ADDed with the new; when that ADD fails, netlab ADDs
it again "with the config it had before". That ADD got the topology's NEW portMappings (runtime_conf built them from
the file), while the pod's record kept the old: portmap DNATed the new hostPort to a pod whose record, and whose DEL,
said the old one. The restore hands the plugins the recorded CNI_ARGS and capability arguments, as libcni's cached
DEL does.
"""

from __future__ import annotations

import json

import pytest

from test_cni_reattach import ADD_BOTH, DEL_BOTH, up, world  # noqa: F401 (world: the fixture)
from netlab.cni import lifecycle, runtime
from netlab.cni.invoke import PluginFailed
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records


def ports(host_port: int) -> list[dict[str, object]]:
    return [{"hostPort": host_port, "containerPort": 8080, "protocol": "tcp", "hostIP": ""}]


def test_a_failed_re_add_restores_the_pod_with_its_recorded_host_port(world, monkeypatch, tmp_path):  # noqa: F811
    lab, plugins = world
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net", "plugins": [
        {"type": "chain", "capabilities": {"ipRanges": True, "portMappings": True}}]}))
    topo = tmp_path / "t.yaml"
    text = topo.read_text()
    pod_a = "  - {name: a, node: n1, ip: 10.244.0.2}\n"
    with_port = "  - {name: a, node: n1, ip: 10.244.0.2, containers: [{name: web, ports: [{containerPort: 8080, " \
        "hostPort: %d}]}]}\n"
    topo.write_text(text.replace(pod_a, with_port % 18080))
    lab = resolve(load_topology(str(topo)))
    k = FakeKernel()
    up(lab, k)
    before = pod_records(state_mod.load_state(lab.name))["a"]
    assert before["capabilityArgs"]["portMappings"] == ports(18080)

    topo.write_text(text.replace(pod_a, with_port % 18081))  # the new hostPort: up re-attaches pod a
    lab = resolve(load_topology(str(topo)))

    def new_port_fails(log, **kw):
        rc = kw["conf"].get("runtimeConfig") or {}
        if kw["command"] == "ADD" and kw["pod"] == "a" and rc.get("portMappings") == ports(18081):
            plugins.calls.append(("a", "chain", "ADD", "eth0"))
            raise PluginFailed("pod a: CNI plugin chain ADD: failed (exit 1): no")
        return plugins(log, **kw)

    monkeypatch.setattr(runtime, "exec_plugin", new_port_fails)
    plugins.calls.clear()
    plugins.runtime_config.clear()
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert "then pod a was attached again with the config it had before" in str(exc.value)
    assert plugins.of("a") == DEL_BOTH + ADD_BOTH + DEL_BOTH + ADD_BOTH
    # the restoring ADD (the last one) got the hostPort the pod had, as its record says
    last_add = [rc for p, n, c, rc in plugins.runtime_config if (p, n, c) == ("a", "chain", "ADD")][-1]
    assert last_add["portMappings"] == ports(18080)
    after = pod_records(state_mod.load_state(lab.name))["a"]
    assert after["phase"] == "added" and after["capabilityArgs"] == before["capabilityArgs"]
    assert after["args"] == before["args"]
    monkeypatch.setattr(runtime, "exec_plugin", plugins)
    plugins.runtime_config.clear()
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    dels = [rc for p, n, c, rc in plugins.runtime_config if (p, n, c) == ("a", "chain", "DEL")]
    assert dels and dels[0]["portMappings"] == ports(18080)  # its DEL takes out the DNAT it was given
