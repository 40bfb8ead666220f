"""A running lab's Services keep their nodePorts through up, against the fake kernel (no root): the state saves them,
its schema checks them, and a state an older netlab saved (no node_ports nor health_checks in its record) holds the
ones its topology gives afresh, which that netlab made: a Service added above then moves none.
tests/integration/test_held_node_ports.py does it on a real lab."""

from __future__ import annotations

import pytest

from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize import state_dir


def write(tmp_path, *services: str) -> str:
    path = tmp_path / "t.yaml"
    path.write_text("name: fnp\nnodes: [{name: n1}]\npods: [{name: p, node: n1, labels: {app: web}}]\nservices:\n"
                    + "".join(f"  - {{name: {s}, type: NodePort, selector: {{app: web}}, ports: [{{port: 80}}]}}\n"
                              for s in services))
    return str(path)


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))


def up(path: str, kernel):
    return lab_up.up(resolve(load_topology(path)), kernel, features=(), source=path, journal=Journal(kernel))


def held_ports(lab: str = "fnp") -> dict[str, int]:
    return {name: np for (_, name, _, _), np in state_mod.load_state(lab).held().node_ports.items()}


def test_the_state_keeps_the_node_ports_and_an_older_one_holds_those_its_topology_gives_afresh(tmp_path):
    k = FakeKernel()
    up(write(tmp_path, "a", "b"), k)
    assert held_ports() == {"a": 30000, "b": 30001}
    up(write(tmp_path, "new", "a", "b"), k)
    assert held_ports() == {"new": 30002, "a": 30000, "b": 30001}
    state = state_mod.load_state("fnp")
    for key in ("node_ports", "health_checks"):
        del state.extra[state_mod.ADDRESSES][key]
    state.save()
    # the file-order allocation of its saved topology: what the netlab that made the lab gave it
    assert held_ports() == {"new": 30000, "a": 30001, "b": 30002}
    up(write(tmp_path, "top", "new", "a", "b"), k)
    assert held_ports() == {"top": 30003, "new": 30000, "a": 30001, "b": 30002}


def test_the_state_schema_checks_the_node_ports_and_health_checks():
    from netlab.realize.state_schema import AddressesRecord

    good = {"pods": {}, "services": [], "node_ports": [["default", "web", 80, "TCP", 30000]],
            "health_checks": [["default", "web", 30001]]}
    AddressesRecord.model_validate(good)
    AddressesRecord.model_validate({"pods": {}, "services": []})  # an older netlab's record
    for bad in ({**good, "node_ports": [["default", "web", 80, "TCP", "30000"]]},
                {**good, "node_ports": [["default", "web", 80, "ICMP", 30000]]},
                {**good, "node_ports": [["default", "web", 80, 30000]]},
                {**good, "health_checks": [["default", "web", 70000]]}):
        with pytest.raises(ValueError):
            AddressesRecord.model_validate(bad)
