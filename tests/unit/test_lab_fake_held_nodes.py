"""A running lab's nodes keep their underlay IP and pod CIDR block through up, against the fake kernel (no root):
a node inserted in the middle of nodes: re-addresses no running node nor its pods, status against the file (the
dry run) says only what up then makes, and a state an older netlab saved (no nodes in its record) holds the
blocks its topology gives afresh; so do its Services' nodePorts (no node_ports in its record: those its topology
gives afresh, which that netlab made). tests/integration/test_held_addresses.py and test_held_node_ports.py do it on
a real lab."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Interface

import pytest

from netlab.api import topology as api_topology
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize import state_dir


def write(tmp_path, *nodes: str) -> str:
    """Each node with one pod, ``p-NODE``."""
    path = tmp_path / "t.yaml"
    path.write_text("name: fn\nnodes:\n" + "".join(f"  - {{name: {n}}}\n" for n in nodes) + "pods:\n"
                    + "".join(f"  - {{name: p-{n}, node: {n}}}\n" for n in nodes))
    return str(path)


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))


def up(path: str, kernel):
    """As `up -t FILE` runs: a lab resolved from the file alone; up resolves it again with what the lab holds."""
    return lab_up.up(resolve(load_topology(path)), kernel, features=(), source=path, journal=Journal(kernel))


def addrs(kernel, ns: str, dev: str) -> list[IPv4Interface]:
    return [a.address for a in kernel.ns[f"fn-{ns}"].addrs if a.dev == dev]


def seen(kernel, nodes) -> dict[str, list]:
    """Each node's eth0 and cni0 addresses and its pod's eth0 address, as the kernel has them."""
    return {n: [addrs(kernel, n, "eth0"), addrs(kernel, n, "cni0"), addrs(kernel, f"p-{n}", "eth0")] for n in nodes}


def test_a_node_inserted_mid_file_re_addresses_no_running_node_nor_its_pods(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, "n1", "n2"), k)
    before = seen(k, ["n1", "n2"])
    assert before["n2"] == [[IPv4Interface("192.168.122.3/24")], [IPv4Interface("10.244.1.1/24")],
                            [IPv4Interface("10.244.1.2/24")]]
    path = write(tmp_path, "n1", "mid", "n2")
    loaded = api_topology.load(path)  # what plan -t FILE shows, as root
    assert {n.name: (str(n.ip), str(n.pod_cidr)) for n in loaded.lab.nodes} == {
        "n1": ("192.168.122.2", "10.244.0.0/24"), "mid": ("192.168.122.4", "10.244.2.0/24"),
        "n2": ("192.168.122.3", "10.244.1.0/24")}
    state = state_mod.load_state("fn")
    against = lab_status.status(replace(state, topology=loaded.lab.topo.model_dump(
        mode="json", by_alias=True, exclude_none=True)), k)  # status -t FILE: what up would change
    assert not any("fn-n2" in line or "fn-p-n2" in line for line in against.drift if "missing" not in line), \
        against.drift
    assert "missing: namespace fn-mid" in against.drift and "missing: namespace fn-p-mid" in against.drift
    done = up(path, k)
    assert sorted(done.created_netns) == ["fn-mid", "fn-p-mid"], done.created_netns
    assert seen(k, ["n1", "n2"]) == before
    assert seen(k, ["mid"])["mid"] == [[IPv4Interface("192.168.122.4/24")], [IPv4Interface("10.244.2.1/24")],
                                       [IPv4Interface("10.244.2.2/24")]]
    assert lab_status.status(state_mod.load_state("fn"), k).ok
    assert up(path, k).changed is False  # converged: the same file again changes nothing
    up(write(tmp_path, "mid", "n2"), k)  # n1 goes: its block and IP are free again
    up(write(tmp_path, "new", "mid", "n2"), k)
    assert seen(k, ["new"])["new"] == [[IPv4Interface("192.168.122.2/24")], [IPv4Interface("10.244.0.1/24")],
                                       [IPv4Interface("10.244.0.2/24")]]


def test_a_state_of_an_older_netlab_holds_the_blocks_its_topology_gives_afresh(tmp_path):
    """A lab brought up by a netlab that saved its pods' addresses but not its nodes': its nodes hold the
    file-order ones, and keep them."""
    k = FakeKernel()
    up(write(tmp_path, "n1", "n2"), k)
    state = state_mod.load_state("fn")
    for key in ("nodes", "load_balancers"):
        del state.extra[state_mod.ADDRESSES][key]
    state.save()
    assert state_mod.load_state("fn").held().nodes["n2"].pod_cidr == resolve(load_topology(
        write(tmp_path, "n1", "n2"))).addressing.node_pod_cidr["n2"]
    before = seen(k, ["n1", "n2"])
    up(write(tmp_path, "n0", "n1", "n2"), k)
    assert seen(k, ["n1", "n2"]) == before
    assert str(state_mod.load_state("fn").held().nodes["n0"].pod_cidr) == "10.244.2.0/24"


def test_the_state_schema_checks_the_nodes_load_balancers_and_node_ports(tmp_path):
    from netlab.realize.state_schema import AddressesRecord

    good = {"pods": {}, "services": [], "nodes": {"n1": ["192.168.122.2", "10.244.0.0/24"]},
            "load_balancers": [["default", "web", "203.0.113.254"]],
            "node_ports": [["default", "web", 80, "TCP", 30000]], "health_checks": [["default", "web", 30001]]}
    AddressesRecord.model_validate(good)
    AddressesRecord.model_validate({"pods": {}, "services": []})  # an older netlab's record
    AddressesRecord.model_validate({**good, "node_ports": [["default", "web", "http", 30000],
                                                           ["default", "a", "", 30001],
                                                           ["default", "web", 81, "UDP", 30002]]})
    for bad in ({**good, "nodes": {"n1": ["10.244.0.0/24", "192.168.122.2"]}},
                {**good, "nodes": {"n1": ["192.168.122.2"]}},
                {**good, "load_balancers": [["default", "web", "203.0.113.256"]]},
                {**good, "node_ports": [["default", "web", 80, "TCP", "30000"]]},
                {**good, "node_ports": [["default", "web", 80, "ICMP", 30000]]},
                {**good, "node_ports": [["default", "web", 80, 30000]]},
                {**good, "node_ports": [["default", "web", "Http", 30000]]},
                {**good, "node_ports": [["default", "web", "http", 0]]},
                {**good, "health_checks": [["default", "web", 70000]]}):
        with pytest.raises(ValueError):
            AddressesRecord.model_validate(bad)


def write_services(tmp_path, *services: str) -> str:
    path = tmp_path / "t.yaml"
    path.write_text("name: fnp\nnodes: [{name: n1}]\npods: [{name: p, node: n1, labels: {app: web}}]\nservices:\n"
                    + "".join(f"  - {{name: {s}, type: NodePort, selector: {{app: web}}, ports: [{{port: 80}}]}}\n"
                              for s in services))
    return str(path)


def held_ports(lab: str = "fnp") -> dict[str, int]:
    return {name: np for (_, name, _), np in state_mod.load_state(lab).held().node_ports.items()}


def test_the_state_keeps_the_node_ports_and_an_older_one_holds_those_its_topology_gives_afresh(tmp_path):
    k = FakeKernel()
    up(write_services(tmp_path, "a", "b"), k)
    assert held_ports() == {"a": 30000, "b": 30001}
    up(write_services(tmp_path, "new", "a", "b"), k)
    assert held_ports() == {"new": 30002, "a": 30000, "b": 30001}
    state = state_mod.load_state("fnp")
    for key in ("node_ports", "health_checks"):
        del state.extra[state_mod.ADDRESSES][key]
    state.save()
    # the file-order allocation of its saved topology: what the netlab that made the lab gave it
    assert held_ports() == {"new": 30000, "a": 30001, "b": 30002}
    up(write_services(tmp_path, "top", "new", "a", "b"), k)
    assert held_ports() == {"top": 30003, "new": 30000, "a": 30001, "b": 30002}



def test_an_older_netlabs_node_ports_by_port_number_are_kept_by_the_names_of_the_ports_it_runs(tmp_path):
    """A state whose node_ports rows are [namespace, name, port, protocol, nodePort] (an older netlab's): held()
    names each by the saved topology's port of that number and protocol, so an up that renumbers the port keeps
    its nodePort, and saves it by name."""
    path = tmp_path / "t.yaml"
    head = "name: fnp\nnodes: [{name: n1}]\npods: [{name: p, node: n1, labels: {app: web}}]\nservices:\n"
    path.write_text(head + "  - {name: a, type: NodePort, selector: {app: web}, ports: [{port: 80}]}\n"
                    "  - {name: b, type: NodePort, selector: {app: web}, ports: [{name: http, port: 80}, "
                    "{name: dns, port: 53, protocol: UDP}]}\n")
    k = FakeKernel()
    up(str(path), k)
    state = state_mod.load_state("fnp")
    state.extra[state_mod.ADDRESSES]["node_ports"] = [["default", "a", 80, "TCP", 30000],
                                                      ["default", "b", 80, "TCP", 30001],
                                                      ["default", "b", 53, "UDP", 30002]]
    state.save()
    held = state_mod.load_state("fnp").held()
    assert dict(held.node_ports) == {("default", "a", ""): 30000, ("default", "b", "http"): 30001,
                                     ("default", "b", "dns"): 30002} and held.older_node_ports == {}
    path.write_text(head + "  - {name: a, type: NodePort, selector: {app: web}, ports: [{port: 8080}]}\n"
                    "  - {name: b, type: NodePort, selector: {app: web}, ports: [{name: dns, port: 5353}, "
                    "{name: http, port: 81}]}\n")
    up(str(path), k)
    record = state_mod.load_state("fnp").extra[state_mod.ADDRESSES]["node_ports"]
    assert record == [["default", "a", "", 30000], ["default", "b", "dns", 30002], ["default", "b", "http", 30001]]
