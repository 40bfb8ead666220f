"""Validation messages in the user's words: a union field (network.cni) is one line, not pydantic's
member tags; an included file with no kind says so without Python's None; a refused include names
its path once."""

from __future__ import annotations

import os

import pytest

from netlab.errors import TopologyError
from netlab.model.load import load_topology

NODES = "nodes:\n  - name: n1\n"


def problems(tmp_path, text: str, files: dict[str, str] | None = None) -> list[str]:
    for name, body in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as info:
        load_topology(str(path))
    return [str(p).removeprefix(str(tmp_path) + "/") for p in info.value.problems]


WANT = "want builtin, reference, or a conflist mapping {conflist: FILE, binDir: DIR}"


@pytest.mark.parametrize("value, got", [
    ("references", "got 'references'; did you mean 'reference'?"),
    ("Builtin", "got 'Builtin'; did you mean 'builtin'?"),
    ("5", "got 5"),
    ("yes", "got yes (a YAML boolean)"),
    ("[a]", "got a list"),
])
def test_a_bad_cni_word_is_one_line_without_pydantic_tags(tmp_path, value, got):
    lines = problems(tmp_path, f"name: m\nnetwork: {{cni: {value}}}\n" + NODES)
    assert lines == [f"t.yaml:2: network.cni: {WANT}; {got}"]


def test_a_cni_mapping_is_checked_as_the_conflist_it_is_meant_to_be(tmp_path):
    lines = problems(tmp_path, "name: m\nnetwork:\n  cni: {conflist: 3, bogus: 1}\n" + NODES)
    assert lines == ['t.yaml:3: network.cni.bogus: unknown field \'bogus\' (network.cni takes: conflist, binDir)',
                     't.yaml:3: network.cni.conflist: 3 is a number here; quote it ("3") if you meant text']
    lines = problems(tmp_path, "name: m\nnetwork:\n  cni: {}\n" + NODES)
    assert lines == ["t.yaml:3: network.cni.conflist: required field is missing; add conflist:"]


def test_a_null_cni_is_said_once_like_any_null(tmp_path):
    lines = problems(tmp_path, "name: m\nnetwork:\n  cni:\n" + NODES)
    assert lines == ["t.yaml:3: network.cni: has no value (null); give one or remove the key"]


def test_union_problems_sit_among_the_others_and_tags_never_show(tmp_path):
    lines = problems(tmp_path, "name: m\nnetwork:\n  cni: refrence\n  mode: vxlan2\n" + NODES)
    assert len(lines) == 2 and lines[0].startswith("t.yaml:3: network.cni: want ") and "vxlan2" in lines[1]
    assert not any("CniConflist" in line or "literal[" in line for line in lines)


@pytest.mark.parametrize("doc, message", [
    ("apiVersion: v1\nmetadata: {name: s}\n",
     "inc/x.yaml:1: kind: missing; an included file needs kind: NetworkPolicy or kind: Namespace"),
    ("apiVersion: v1\nkind:\nmetadata: {name: s}\n",
     "inc/x.yaml:2: kind: has no value (null); an included file needs kind: NetworkPolicy or kind: Namespace"),
    ("kind: [a]\n", "inc/x.yaml:1: kind: must be NetworkPolicy or Namespace, not a list"),
    ("kind: Secret\n", "inc/x.yaml:1: kind: kind 'Secret' cannot be included; include NetworkPolicy or Namespace "
                       "manifests"),
    ("- a\n", "inc/x.yaml:1: topology: is a list; a manifest is a mapping (apiVersion:, kind:, metadata:, spec:)"),
])
def test_an_included_document_without_a_usable_kind_says_what_it_needs(tmp_path, doc, message):
    lines = problems(tmp_path, "name: m\n" + NODES + "include: [inc/x.yaml]\n", {"inc/x.yaml": doc})
    assert lines == [message]
    assert "None" not in lines[0]


def test_a_symlink_out_of_the_folder_is_named_once(tmp_path):
    lab = tmp_path / "lab"
    (lab / "inc").mkdir(parents=True)
    (tmp_path / "out.yaml").write_text("kind: Namespace\n")
    os.symlink(tmp_path / "out.yaml", lab / "inc" / "link.yaml")
    lines = problems(lab, "name: m\n" + NODES + "include: [inc/link.yaml, 'inc/*.yaml']\n")
    assert lines == [
        "t.yaml:4: include[0]: 'inc/link.yaml' leads outside the topology's folder (a symlink); refused",
        "t.yaml:4: include[1]: 'inc/*.yaml': inc/link.yaml leads outside the topology's folder (a symlink); refused",
    ]
