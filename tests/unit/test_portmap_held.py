"""portmap's shared chains stay on a node once made, as the real plugin leaves them (fake kernel, no root).

portmap's DEL (containernetworking/plugins, unforwardPorts) takes out only the pod's ``CNI-DN-<hash>`` chain and
its dispatch rules in ``CNI-HOSTPORT-DNAT``; ``CNI-HOSTPORT-DNAT``, ``-SETMARK``, ``-MASQ`` and their jumps from
PREROUTING, OUTPUT and POSTROUTING stay once its ADD made them. netlab deleted them all with the node's last
hostPort pod. Now a running lab's node keeps them (Held.portmap_nodes, saved with the lab's addresses) while the
lab runs: an up that takes out the last hostPort pod (or its hostPort) leaves what the real DEL leaves, status
says all as planned, and the same file brought up afresh has none."""

from __future__ import annotations

import json

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.addressing import Held
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.plan.resources import NatRules, Sysctl
from netlab.realize import state as state_mod
from netlab.realize import state_dir

HOST_PORT = "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, hostPort: 18080}]}]}\n"
NO_HOST_PORT = "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080}]}]}\n"
# What the real plugin's DEL leaves of its ADD (test_portmap_rules.REAL): the shared chains and their jumps
LEFT = ['-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
        '-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
        '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        '-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE',
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000']


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))


def write(tmp_path, pods: str, mode: str = "iptables") -> str:
    path = tmp_path / "t.yaml"
    path.write_text(f"name: fhp\nnetwork: {{mode: host-gw}}\ncluster: {{kubeProxyMode: {mode}}}\n"
                    "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                    + pods + "  - {name: b, node: n2}\n")
    return str(path)


def up(path: str, kernel) -> None:
    lab_up.up(resolve(load_topology(path)), kernel, features=(), source=path, journal=Journal(kernel))


def nat(lab, node: str) -> NatRules:
    [out] = [r for r in build_plan(lab).resources
             if isinstance(r, NatRules) and r.netns == f"fhp-{node}" and r.table == "nat"]
    return out


def localnet(lab) -> set[tuple[str, str]]:
    return {(r.netns, r.value) for r in build_plan(lab).resources
            if isinstance(r, Sysctl) and r.name == "net.ipv4.conf.cni0.route_localnet"}


def portmaps(rules: NatRules) -> list[str]:
    return [line for line in rules.rules if "CNI-" in line]


def ordered(lines: list[str]) -> list[str]:
    return sorted(lines, key=lambda line: (line.split()[1] not in ("PREROUTING", "OUTPUT", "POSTROUTING"), line))


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
@pytest.mark.parametrize("after", [NO_HOST_PORT, ""], ids=["hostPort-removed", "pod-removed"])
def test_a_node_keeps_portmap_s_shared_chains_after_its_last_host_port_pod_goes(tmp_path, mode, after):
    k = FakeKernel()
    up(write(tmp_path, HOST_PORT, mode), k)
    assert state_mod.load_state("fhp").held().portmap_nodes == frozenset({"n1"})
    up(write(tmp_path, after, mode), k)
    state = state_mod.load_state("fhp")
    running = state.resolved()
    n1 = nat(running, "n1")
    assert ordered(portmaps(n1)) == ordered(LEFT)
    assert {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"} <= set(n1.chains)
    assert not [c for c in n1.chains if c.startswith("CNI-DN-")]
    assert not portmaps(nat(running, "n2"))
    assert "portmap's" in n1.payload.splitlines()[0]
    # portmap's ADD set route_localnet=1 on cni0 and its DEL leaves it: kept with the chains, on n1 alone
    assert localnet(running) == {("fhp-n1", "1")}
    assert not localnet(resolve(load_topology(write(tmp_path, after, mode))))
    assert lab_status.status(state, k).ok
    assert state.held().portmap_nodes == frozenset({"n1"})
    # the same file brought up afresh (no running lab): no portmap chain anywhere
    assert not portmaps(nat(resolve(load_topology(write(tmp_path, after, mode))), "n1"))
    # a hostPort back on n1: its pod's chain and dispatch rule beside the kept ones, no rule twice
    up(write(tmp_path, HOST_PORT, mode), k)
    again = nat(state_mod.load_state("fhp").resolved(), "n1")
    assert len(portmaps(again)) == len(set(portmaps(again))) == len(LEFT) + 4


def test_held_portmap_nodes_survive_the_state_file_and_an_older_record_holds_those_its_topology_made(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, HOST_PORT), k)
    rec = state_mod.load_state("fhp").extra[state_mod.ADDRESSES]
    assert Held.from_json(json.loads(json.dumps(rec))).portmap_nodes == frozenset({"n1"})
    state = state_mod.load_state("fhp")
    del state.extra[state_mod.ADDRESSES]["portmap_nodes"]  # an older netlab's record: its hostPort nodes had them
    state.save()
    assert state_mod.load_state("fhp").held().portmap_nodes == frozenset({"n1"})
    from netlab.realize.state_schema import AddressesRecord

    AddressesRecord.model_validate({"pods": {}, "services": [], "portmap_nodes": ["n1"]})
    for bad in (["N1"], "n1", [1]):
        with pytest.raises(ValueError):
            AddressesRecord.model_validate({"pods": {}, "services": [], "portmap_nodes": bad})


def test_a_node_removed_from_the_file_holds_nothing(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, HOST_PORT), k)
    path = tmp_path / "t.yaml"
    path.write_text("name: fhp\nnetwork: {mode: host-gw}\nnodes: [{name: n2, podCIDR: 10.244.1.0/24}]\n"
                    "pods: [{name: b, node: n2}]\n")
    up(str(path), k)
    assert state_mod.load_state("fhp").held().portmap_nodes == frozenset()
