"""A chained plugin whose result names an address the pod's interface does not have (QA q20 #2).

The runtime takes the chain's result as the pod's IP (containerd reports it to the kubelet; Services send to it):
the ADD fails naming the plugin whose result gave that address last, and what the pod's eth0 has, instead of the lab
taking the address and a second ADD asking host-local for it (which `bridge` then refused). One ADD's arguments
never contradict each other: CNI_ARGS' IP= and runtimeConfig.ips both give the planned address.
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from ipaddress import IPv4Address
from types import SimpleNamespace

import pytest
import test_cni_reattach

from netlab.cni import lifecycle
from netlab.cni.changed import runtime_conf
from netlab.cni.invoke import CallLog, PluginFailed
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.kernel import live
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import AddrMsg, LinkMsg
from netlab.model.cniconf import parse_conflist

world = test_cni_reattach.world  # the fixture: fake plugins, a conflist lab (pod a planned at 10.244.0.2)

PLUGIN = r'''#!/usr/bin/env python3
import json, os, sys
conf = json.load(sys.stdin)
if os.environ["CNI_COMMAND"] == "ADD":
    res = conf.get("prevResult") or {"cniVersion": "1.0.0", "interfaces": [
        {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/lab-a"}],
        "ips": [{"address": "10.244.0.7/24", "interface": 1}]}
    for ip in res["ips"]:
        ip["address"] = conf.get("rewrite", ip["address"])
    print(json.dumps(res))
'''


class PodKernel:
    """Stands in for LiveKernel: the pod's namespace with eth0 holding 10.244.0.7/24."""

    def snapshot(self, netns, sysctls=(), tables=True):
        snap = Snapshot(netns=netns)
        snap.links = {"eth0": LinkMsg(index=2, name="eth0", kind="veth", up=True, mtu=1500, mac=None, master=None,
                                      peer=None, peer_netnsid=None, alias=None, group=0, txqlen=1000)}
        snap.addrs = [AddrMsg(index=2, address="10.244.0.7", prefixlen=24, broadcast=None, scope=0, label="eth0")]
        return snap

    def close(self):
        pass


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("bridge", "tuning", "mine"):
        (d / name).write_text(PLUGIN)
        (d / name).chmod(0o755)
    monkeypatch.setattr(live, "LiveKernel", PodKernel)
    return Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))


def chain(**mine):
    return parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "bridge"}, {"type": "tuning"}, {"type": "mine", **mine}, {"type": "tuning"}]}))


RT = RuntimeConf(pod="a", container_id="c" * 64, netns="lab-a", ifname="eth0", node_netns=None)


def confirm():
    from netlab.cni.verify import address_missing  # what cni.attach.attach hands the ADD of eth0

    return partial(address_missing, "lab-a", ifname="eth0")


def test_the_add_fails_naming_the_plugin_whose_result_gave_the_address_the_pod_lacks(runtime):
    with pytest.raises(PluginFailed) as exc:
        runtime.add(chain(rewrite="10.99.0.5/24"), RT, confirm())
    assert str(exc.value) == (
        "pod a: CNI plugin mine ADD: its result says eth0 has 10.99.0.5, but the pod's eth0 has 10.244.0.7/24: a "
        "runtime takes the result's address as the pod's IP (containerd reports it to the kubelet), and no packet to "
        "it would reach the pod (it changed its prevResult's 10.244.0.7)")
    assert runtime.cached_result("n", RT)["ips"][0]["address"] == "10.99.0.5/24"  # the DEL after it gets it


def test_a_result_with_the_pods_address_passes_and_the_first_plugin_is_named_when_it_is_wrong(runtime):
    assert runtime.add(chain(), RT, confirm())["ips"][0]["address"] == "10.244.0.7/24"
    first = parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "mine", "rewrite": "10.99.0.5/24"}, {"type": "tuning"}]}))
    with pytest.raises(PluginFailed, match=r"^pod a: CNI plugin mine ADD: its result says eth0 has 10\.99\.0\.5, "
                                           r"but .* reach the pod$"):
        runtime.add(first, RT, confirm())


def test_one_add_asks_one_address_in_cni_args_and_runtime_config(world):
    """A pod whose lab follows the address its plugins gave (pod.ip) is ADDed again, on a re-attach, with the
    planned address in both IP= and runtimeConfig.ips (they said 10.99.0.5 and 10.244.0.2/24)."""
    lab, _ = world
    followed = dataclasses.replace(lab.pod("a"), ip=IPv4Address("10.99.0.5"))
    rec = lifecycle._record(lab, followed, SimpleNamespace(run_id="r1"))
    assert dict(map(tuple, rec["args"]))["IP"] == "10.244.0.2" and rec["capabilityArgs"]["ips"] == ["10.244.0.2/24"]
    rt = runtime_conf(lab, followed, rec, "eth0")
    assert dict(rt.args)["IP"] == "10.244.0.2" and rt.capability_args["ips"] == ["10.244.0.2/24"]


NET0 = {"cniVersion": "1.0.0", "interfaces": [
    {"name": "veth1", "mac": "aa:bb:cc:00:00:01"}, {"name": "net0", "sandbox": "/run/netns/lab-a"}],
    "ips": [{"address": "10.244.0.2/24", "interface": 1}]}


def test_a_result_naming_another_pod_interface_is_said_as_the_result_says_it(monkeypatch):
    """QA q38 #4: a plugin that ignores CNI_IFNAME and makes net0: the result ties 10.244.0.2 to net0, and the
    error says so (and that CNI_IFNAME was eth0), not that the result says eth0 has it."""
    class NoEth0(PodKernel):
        def snapshot(self, netns, sysctls=(), tables=True):
            return Snapshot(netns=netns)

    monkeypatch.setattr(live, "LiveKernel", NoEth0)
    assert confirm()(NET0) == (
        "its result says net0 has 10.244.0.2, though CNI_IFNAME (the name the runtime asked for the pod's interface) "
        "was eth0, and the pod's eth0 does not exist: a runtime takes the result's address as the pod's IP (containerd reports "
        "it to the kubelet), and no packet to it would reach the pod")
    untied = {**NET0, "ips": [{"address": "10.244.0.2/24"}]}  # no `interface`: the result's only pod interface
    assert confirm()(untied).startswith("its result says net0 has 10.244.0.2, though CNI_IFNAME ")
