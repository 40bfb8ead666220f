"""CNI_ARGS' IP= in the form each IPAM takes (QA cnf63 #1).

Debian's ``static`` IPAM (containernetworking/plugins, plugins/ipam/static) parses IP= with net.ParseCIDR: a bare
address fails every ADD ("the 'ip' field is expected to be in CIDR notation"). host-local parses it as an address
with an optional prefix from v1.0.0 on (a bare one before), and examples/cni/bash-bridge as a bare address. So a
network whose IPAM is static gets IP=<address>/<the node's podCIDR prefix> (what runtimeConfig.ips says for the
same ADD), every other network the bare address, as before. Pure: no plugin runs, no root."""

from __future__ import annotations

import json
from pathlib import Path

from netlab.cni.invoke import CallLog
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import parse_conflist
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import cniadd

STATIC = {"cniVersion": "1.0.0", "name": "qcmv", "plugins": [
    {"type": "macvlan", "master": "eth0", "mode": "bridge",
     "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}}]}
HOST_LOCAL = {"cniVersion": "1.0.0", "name": "hl", "plugins": [
    {"type": "bridge", "capabilities": {"ips": True, "ipRanges": True}, "ipam": {"type": "host-local"}}]}
TOPO = """name: cfst
network: {cni: {conflist: net.conflist}}
nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]
pods: [{name: a, node: n1}, {name: c, node: n2}]
"""


def _lab(tmp_path: Path, conflist: dict):
    (tmp_path / "net.conflist").write_text(json.dumps(conflist))
    (tmp_path / "t.yaml").write_text(TOPO)
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def _ip_arg(step: cniadd.CniAdd) -> str:
    return dict(kv.split("=", 1) for kv in dict(step.env)["CNI_ARGS"].split(";"))["IP"]


def test_a_static_ipam_network_is_asked_for_the_planned_address_with_its_prefix(tmp_path):
    a, c = cniadd.add_steps(_lab(tmp_path, STATIC))
    assert (_ip_arg(a), _ip_arg(c)) == ("10.244.0.2/24", "10.244.1.2/24")
    assert any("CNI_ARGS IP=10.244.0.2/24" in line for line in a.expected), a.expected


def test_a_host_local_network_keeps_the_bare_address(tmp_path):
    a, _ = cniadd.add_steps(_lab(tmp_path, HOST_LOCAL))
    assert _ip_arg(a) == "10.244.0.2"
    assert dict(a.runtime_config)["bridge"] == json.dumps({"ips": ["10.244.0.2/24"], "ipRanges": [
        [{"subnet": "10.244.0.0/24"}]]}, sort_keys=True)


def test_the_runtime_hands_each_network_its_form(tmp_path, monkeypatch):
    """One ADD's arguments (the record's: bare IP=, ips with the prefix): the static network's plugins get the
    prefixed form, the loopback network's and a host-local network's the bare one; the cached arguments stay as
    recorded."""
    from netlab.cni import runtime as runtime_mod

    seen: list[tuple[str, str]] = []

    def fake_exec(log, *, network, env, **kw):
        seen.append((network, dict(kv.split("=", 1) for kv in env["CNI_ARGS"].split(";")).get("IP", "")))
        return {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                "ips": [{"address": "10.244.0.2/24", "interface": 0}]}

    monkeypatch.setattr(runtime_mod, "exec_plugin", fake_exec)
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("macvlan", "bridge", "loopback"):
        (d / name).write_text("#!/bin/sh\nexit 1\n")
        (d / name).chmod(0o755)
    rt_ = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))
    conf = RuntimeConf(pod="a", container_id="c" * 64, netns="x-a", ifname="eth0", node_netns=None,
                       args=[("IgnoreUnknown", "1"), ("IP", "10.244.0.2")],
                       capability_args={"ips": ["10.244.0.2/24"]})
    for net in (STATIC, HOST_LOCAL, {"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}):
        rt_.add(parse_conflist(json.dumps(net)), conf)
    rt_.delete(parse_conflist(json.dumps(STATIC)), conf)
    assert seen == [("qcmv", "10.244.0.2/24"), ("hl", "10.244.0.2"), ("lo", "10.244.0.2"), ("qcmv", "10.244.0.2/24")]
    assert conf.args == [("IgnoreUnknown", "1"), ("IP", "10.244.0.2")]
