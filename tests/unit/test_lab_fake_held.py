"""A running lab's pods keep their addresses through up, against the fake kernel (no root): up resolves the file
with what the lab's state says its pods hold, saves what they hold now, puts it back when a run fails, and
status against the file (the dry run) agrees. tests/integration/test_held_addresses.py does it on a real lab."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest

from netlab.api import topology as api_topology
from netlab.errors import ApplyFailed
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize import state_dir

HEAD = "name: fh\nnodes:\n  - {name: n1}\n  - {name: n2}\npods:\n"


def write(tmp_path, *pods: str) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "".join(f"  - {{name: {p}, node: n1}}\n" for p in pods))
    return str(path)


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))


def up(path: str, kernel, **kw):
    """As `up -t FILE` runs: a lab resolved from the file alone (without what the running lab holds): up
    resolves it again with that."""
    return lab_up.up(resolve(load_topology(path)), kernel, features=(), source=path, journal=Journal(kernel, **kw))


def eth0(kernel, pod: str) -> list[IPv4Interface]:
    return [a.address for a in kernel.ns[f"fh-{pod}"].addrs if a.dev == "eth0"]


def test_up_of_a_file_with_a_pod_inserted_keeps_every_running_pods_address(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, "a", "b", "c"), k)
    assert eth0(k, "b") == [IPv4Interface("10.244.0.3/24")]
    path = write(tmp_path, "a", "new", "b", "c")
    state = state_mod.load_state("fh")
    loaded = api_topology.load(path)  # what plan -t FILE shows, as root
    assert {p.name: str(p.ip) for p in loaded.lab.pods} == {
        "a": "10.244.0.2", "new": "10.244.0.5", "b": "10.244.0.3", "c": "10.244.0.4"}
    against = lab_status.status(replace(state, topology=loaded.lab.topo.model_dump(
        mode="json", by_alias=True, exclude_none=True)), k)  # status -t FILE: what up would change
    assert against.drift == [f"missing: link {loaded.lab.pod('new').host_veth} in fh-n1",
                             "missing: namespace fh-new"], against.drift
    done = up(path, k)
    assert done.created_netns == ["fh-new"] and not any("10.244" in line for line in done.fixed), done.fixed
    assert [eth0(k, p) for p in ("a", "b", "c", "new")] == [[IPv4Interface(f"10.244.0.{i}/24")] for i in (2, 3, 4, 5)]
    state = state_mod.load_state("fh")
    assert {p.name: str(p.ip) for p in state.resolved().pods} == {"a": "10.244.0.2", "new": "10.244.0.5",
                                                                  "b": "10.244.0.3", "c": "10.244.0.4"}
    assert lab_status.status(state, k).ok
    assert up(path, k).changed is False  # converged: the same file again changes nothing
    up(write(tmp_path, "new", "c"), k)  # a and b go: their addresses are free again
    up(write(tmp_path, "new", "c", "d"), k)
    assert eth0(k, "d") == [IPv4Interface("10.244.0.2/24")] and eth0(k, "c") == [IPv4Interface("10.244.0.4/24")]


def test_a_failed_run_puts_back_what_the_pods_held(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, "a", "b"), k)
    before = state_mod.load_state("fh").extra[state_mod.ADDRESSES]
    with pytest.raises(ApplyFailed):
        up(write(tmp_path, "c", "a", "b"), k, fault_at=3)
    assert state_mod.load_state("fh").extra[state_mod.ADDRESSES] == before
    assert lab_status.status(state_mod.load_state("fh"), k).ok


def test_a_state_of_an_older_netlab_holds_what_its_topology_resolves_to(tmp_path):
    """A lab brought up by a netlab that saved no addresses: its pods hold the file-order ones, and keep them."""
    k = FakeKernel()
    up(write(tmp_path, "a", "b"), k)
    state = state_mod.load_state("fh")
    del state.extra[state_mod.ADDRESSES]
    state.save()
    assert state_mod.load_state("fh").held() is None
    up(write(tmp_path, "c", "a", "b"), k)
    assert eth0(k, "a") == [IPv4Interface("10.244.0.2/24")] and eth0(k, "c") == [IPv4Interface("10.244.0.4/24")]
    assert state_mod.load_state("fh").held().pods["c"].ip == IPv4Address("10.244.0.4")


def test_the_state_schema_checks_the_record(tmp_path):
    from netlab.realize.state_schema import AddressesRecord

    AddressesRecord.model_validate({"pods": {"a": ["default", "n1", "10.244.0.0/24", "10.244.0.2"]},
                                    "services": [["default", "web", "10.96.0.11"]]})
    for bad in ({"pods": {"a": ["default", "n1", "10.244.0.0/24", "10.244.0.300"]}, "services": []},
                {"pods": {}, "services": [["default", "web"]]}, {"pods": {}}):
        with pytest.raises(ValueError):
            AddressesRecord.model_validate(bad)


def test_up_warns_when_a_file_asks_for_an_address_a_running_pod_holds(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, "a", "b"), k)
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "  - {name: a, node: n1}\n  - {name: d, node: n1, ip: 10.244.0.3}\n"
                           "  - {name: b, node: n1}\n")
    done = up(str(path), k)
    assert done.warnings == ["pod b held 10.244.0.3, which pod d asks for (ip:): it gets 10.244.0.4, a new address"]
    assert eth0(k, "d") == [IPv4Interface("10.244.0.3/24")] and eth0(k, "b") == [IPv4Interface("10.244.0.4/24")]
    assert up(str(path), k).warnings == []  # said once: b holds its new address now
