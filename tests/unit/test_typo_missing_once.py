"""A typo in a required field's name is one problem: the unknown field with its suggestion. The field it suggests
is missing too, and that line only repeated it ("pods[1].node: required field is missing" after "unknown field
'nod'; did you mean 'node'?"). A missing field no suggestion names is still said (no root)."""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.model.load import load_topology

POD = "name: x\nnodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n  - {name: b, nod: n1}\n"


@pytest.fixture(autouse=True)
def _here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def problems(text: str) -> list[str]:
    with open("t.yaml", "w") as f:
        f.write(text)
    with pytest.raises(TopologyError) as e:
        load_topology("t.yaml")
    return [f"{p.field}: {p.message}" for p in e.value.problems]


def test_a_typo_of_a_required_field_is_one_line():
    [got] = problems(POD)
    assert got.startswith("pods[1].nod: unknown field 'nod'; did you mean 'node'?"), got
    [got] = problems("name: x\nnodez: [{name: n1}]\n")
    assert got.startswith("nodez: unknown field 'nodez'; did you mean 'nodes'?"), got


def test_a_missing_field_no_suggestion_names_is_still_said():
    got = problems("name: x\nnodes: [{name: n1}]\npods:\n  - {name: a}\n  - {name: b, nod: n1, labelz: {}}\n")
    assert "pods[0].node: required field is missing; add node:" in got, got
    assert not any(g.startswith("pods[1].node: required") for g in got), got
    assert sum(g.startswith("pods[1].labelz: unknown field") for g in got) == 1, got
    got = problems("name: x\nnodex: 1\n")  # suggests nodes, which is missing: said once
    assert len(got) == 1 and got[0].startswith("nodex: unknown field 'nodex'; did you mean 'nodes'?"), got
