"""A plugin that writes on the machine, outside the lab (a wrapper's host-local without a dataDir netlab can see,
under /var/lib/cni/networks/<network>), is said by up and by down, in one line each, and nothing of it is removed
(QA). Fake plugins and kernel; the machine's folder is the test's (conftest). The real plugins:
tests/integration/test_cni_host_writes.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cni_fakes import VethPlugins, cni_topo, kernel_lab_world, up
from netlab.cni import host_writes, lifecycle
from netlab.errors import ApplyFailed
from netlab.feature import ModuleFeature
from netlab.kernel.base import Op
from netlab.lab import teardown
from netlab.plan.resources import Veth
from netlab.realize import state as state_mod

TOPO = cni_topo("fkhw") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""


def _net() -> Path:
    return Path(host_writes.HOST_DIRS[0]) / "net"


class Plugins(VethPlugins):
    """A veth per pod, and host-local's files in the machine's folder, as host-local writes them with no dataDir:
    a lease per address (released by DEL), ``lock`` and ``last_reserved_ip.0`` (kept)."""

    fail = ""

    def __call__(self, log, *, pod, network, plugin_path, command, conf, env, node_netns, timeout=None, program=None):
        if env["CNI_IFNAME"] == "eth0" and command == "DEL":
            (_net() / dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";"))["IP"]).unlink(missing_ok=True)
        return super().__call__(log, pod=pod, network=network, plugin_path=plugin_path, command=command, conf=conf,
                                env=env, node_netns=node_netns)

    def add(self, pod, ip, env, *, node_netns, netns, host):
        _net().mkdir(parents=True, exist_ok=True)
        for name in (ip, "lock", "last_reserved_ip.0"):
            (_net() / name).write_text(env["CNI_CONTAINERID"] if name == ip else ip)
        if pod == Plugins.fail:
            from netlab.cni.invoke import PluginFailed
            raise PluginFailed(f"pod {pod}: CNI plugin chain ADD: failed (exit 1): no")
        self.kernel.apply([Op("add", Veth(netns=node_netns, name=host, mtu=1500, mac="02:00:00:00:01:0" + pod[-1],
                                          peer_netns=netns, peer_name="eth0", peer_mac="02:00:00:00:02:0" + pod[-1]))])
        return {"cniVersion": "1.0.0", "interfaces": [{"name": host}, {"name": "eth0", "sandbox": env["CNI_NETNS"]}],
                "ips": [{"address": f"{ip}/24", "interface": 1}]}


world = kernel_lab_world(TOPO, Plugins)


def _said(lines, *names) -> list[str]:
    return [line for line in lines if line.startswith("cni: a plugin wrote outside the lab")]


def test_up_says_what_the_plugins_wrote_on_the_machine_and_down_what_is_left(world):
    lab, k = world
    net = _net()
    (net.parent / "other").mkdir(parents=True)  # another network's, there before: not the lab's
    (net.parent / "other" / "lock").write_text("")
    result = up(lab, k)
    assert _said(result.warnings) == [
        f"cni: a plugin wrote outside the lab: {net}/10.244.0.2, {net}/10.244.0.3, {net}/last_reserved_ip.0, "
        f"{net}/lock (host-local without a dataDir netlab can see, as a wrapper hands its delegate: the machine's "
        "leases); netlab does not remove them"]
    assert _said(up(lab, k).warnings) == []  # nothing new
    done = teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert _said(done.problems) == [
        f"cni: a plugin wrote outside the lab: {net}/last_reserved_ip.0, {net}/lock (host-local without a dataDir "
        "netlab can see, as a wrapper hands its delegate: the machine's leases); netlab does not remove them"]
    assert sorted(os.listdir(net)) == ["last_reserved_ip.0", "lock"] and (net.parent / "other" / "lock").exists()


def test_a_failed_up_says_it_after_its_rollback(world):
    lab, k = world
    Plugins.fail = "b"
    try:
        with pytest.raises(ApplyFailed) as exc:
            up(lab, k)
    finally:
        Plugins.fail = ""
    assert state_mod.load_state(lab.name) is None  # rolled back
    text = str(exc.value)
    assert text.count("a plugin wrote outside the lab") == 1, text
    assert text.endswith(f"; cni: a plugin wrote outside the lab: {_net()}/last_reserved_ip.0, {_net()}/lock "
                         "(host-local without a dataDir netlab can see, as a wrapper hands its delegate: the "
                         "machine's leases); netlab does not remove them"), text


def test_a_builtin_lab_never_looks(state_root, monkeypatch):
    monkeypatch.setattr(host_writes, "entries", lambda: pytest.fail("read the machine's folders"))
    from netlab.kernel.fake import FakeKernel
    from netlab.lab.up import up as lab_up
    from netlab.model.lab import resolve
    from netlab.model.load import validate_source
    from netlab.model.yamlsource import Source

    topo = validate_source(Source(file="<dict>", data={"name": "fkhb", "nodes": [{"name": "n1"}]}, lines={}, raw={}))
    k = FakeKernel()
    lab_up(resolve(topo), k)
    teardown.down("fkhb", k, [])
