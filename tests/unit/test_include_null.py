"""A null document (``null``, ``~``, only a comment) in an included manifest file is skipped, as kubectl apply -f
skips it (cli-runtime's StreamVisitor drops a document that is empty or null) and as an empty document is skipped
here: it is no topology, so "the document is empty (null); a topology needs ..." was the wrong reason."""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.model.load import load_topology

POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1}\nspec: {podSelector: {}}\n"


def write(tmp_path, text: str) -> str:
    (tmp_path / "pol.yaml").write_text(text)
    (tmp_path / "topo.yaml").write_text("name: inc\nnodes: [{name: n1}]\ninclude: [pol.yaml]\n")
    return str(tmp_path / "topo.yaml")


@pytest.mark.parametrize("text", [
    POLICY + "---\n~\n",
    "---\nnull\n---\n" + POLICY,
    POLICY + "---\n# only a comment, which YAML reads as null\n---\n",
    "~\n---\n" + POLICY + "---\nnull\n...\n",
])
def test_a_null_document_is_skipped_as_an_empty_one_is(tmp_path, text):
    topo = load_topology(write(tmp_path, text))
    assert [p.name for p in topo.network_policies] == ["p1"]


def test_a_file_of_null_documents_adds_nothing(tmp_path):
    topo = load_topology(write(tmp_path, "null\n---\n~\n"))
    assert topo.network_policies == [] and topo.namespaces == []


def test_the_next_documents_problem_keeps_its_own_line(tmp_path):
    with pytest.raises(TopologyError) as exc:
        load_topology(write(tmp_path, "~\n---\n" + POLICY.replace("podSelector: {}", "podSelector: 3")))
    [p] = exc.value.problems
    assert (p.line, p.field) == (6, "spec.podSelector") and "topology" not in p.message, p


def test_a_null_topology_is_still_refused(tmp_path):
    (tmp_path / "topo.yaml").write_text("~\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(str(tmp_path / "topo.yaml"))
    assert "the document is empty (null); a topology needs at least name: and nodes:" in str(exc.value)
