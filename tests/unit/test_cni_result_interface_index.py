"""A result whose ips[].interface points at no interface of its own is refused, naming the plugin (QA cnf63 #7).

containerd's go-cni refuses it when it builds the pod's result (createResult: validateInterfaceConfig, "invalid IP
configuration (interface number 7 is > number of interfaces 0)", an invalid result: the sandbox fails), and the
plugins' own ipam.ConfigureIface refuses it ("invalid interface index"); an index that is not an integer is no
result libcni can read (its ``interface`` is a Go *int). netlab took the address as eth0's and said "its result
says eth0 has 10.245.0.50, but the pod's eth0 has ...": the plugin's result is at fault, not the pod. Pure."""

from __future__ import annotations

import json

import pytest

from netlab.cni.conf import check_result
from netlab.cni.invoke import CallLog, PluginFailed
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import parse_conflist

ETH0 = {"name": "eth0", "sandbox": "/run/netns/x-a"}


@pytest.mark.parametrize("result, words", [
    ({"ips": [{"address": "10.245.0.50/24", "interface": 7}]},
     "its result's ips[0] (10.245.0.50/24) names interface 7, but its result lists no interfaces"),
    ({"interfaces": [{"name": "veth1"}, ETH0], "ips": [{"address": "10.245.0.50/24", "interface": 2}]},
     "its result's ips[0] (10.245.0.50/24) names interface 2, but its result lists 2 interfaces (0 to 1)"),
    ({"interfaces": [ETH0], "ips": [{"address": "10.245.0.50/24", "interface": -1}]},
     "its result's ips[0] (10.245.0.50/24) names interface -1, but its result lists 1 interface (0)"),
    ({"interfaces": [ETH0], "ips": [{"address": "10.245.0.50/24", "interface": "0"}]},
     "its result's ips[0] (10.245.0.50/24) names interface '0', which is no index (a whole number)"),
])
def test_an_ips_entry_naming_no_interface_of_the_result_is_refused(result, words):
    with pytest.raises(ValueError) as exc:
        check_result({"cniVersion": "1.0.0", **result}, "1.0.0")
    assert str(exc.value).startswith(words), str(exc.value)
    assert "containerd refuses it" in str(exc.value), str(exc.value)


def test_an_index_of_one_of_its_interfaces_or_none_passes():
    for ips in ([{"address": "10.245.0.50/24", "interface": 1}], [{"address": "10.245.0.50/24"}]):
        check_result({"cniVersion": "1.0.0", "interfaces": [{"name": "veth1"}, ETH0], "ips": ips}, "1.0.0")


def test_the_add_fails_in_one_line_naming_the_plugin(tmp_path, monkeypatch):
    from netlab.cni import runtime as runtime_mod

    monkeypatch.setattr(runtime_mod, "exec_plugin", lambda log, **kw: {
        "cniVersion": "1.0.0", "ips": [{"address": "10.245.0.50/24", "interface": 7}]})
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mine").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "bin" / "mine").chmod(0o755)
    rt_ = Runtime(str(tmp_path / "cache"), [str(tmp_path / "bin")], CallLog(None))
    net = parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "mine"}]}))
    with pytest.raises(PluginFailed) as exc:
        rt_.add(net, RuntimeConf(pod="a", container_id="c" * 64, netns="x-a", ifname="eth0", node_netns=None))
    assert str(exc.value).startswith("pod a: CNI plugin mine ADD: its result's ips[0] (10.245.0.50/24) names "
                                     "interface 7, but its result lists no interfaces"), str(exc.value)
    assert len(str(exc.value).splitlines()) == 1
