"""An include glob that matches no file is a note, not a problem (QA polfix 3): deleting the last policy file a
glob matched made `up` refuse the lab (``include[0]: 'pol/*.yaml' matches no file``, exit 2), so the deleted
policy stayed enforced; with kubectl's workflow the objects that are gone from the files are gone from the
cluster. A glob whose folder does not exist, and a file named without a wildcard that is not there, are still
refused: a typo, not an emptied folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from netlab.api.topology import load
from netlab.errors import TopologyError

TOPO = "name: inc\nnodes: [{name: n1}]\nnamespaces: [{name: x}]\ninclude: [PATTERN]\n"
POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p1, namespace: x}\n"


def written(tmp_path: Path, pattern: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "topo.yaml").write_text(TOPO.replace("PATTERN", repr(pattern)))
    return str(tmp_path / "topo.yaml")


def test_a_glob_whose_files_were_all_deleted_includes_nothing_and_says_so(tmp_path):
    path = written(tmp_path, "pol/*.yaml", {"pol/p1.yaml": POLICY})
    assert [p.name for p in load(path, running=False).lab.topo.network_policies] == ["p1"]
    (tmp_path / "pol" / "p1.yaml").unlink()
    loaded = load(path, running=False)
    assert loaded.lab.topo.network_policies == []
    assert loaded.notes == (f"{path}:4: include[0]: 'pol/*.yaml' matches no file now: no object comes from it "
                            "(a NetworkPolicy or Namespace its files held is removed by up)",)


def test_validate_says_the_note_and_exits_0(tmp_path):
    path = written(tmp_path, "pol/*.yaml", {"pol/README": "not yaml"})
    res = run_cli("validate", "-t", path, "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["valid"] and any("'pol/*.yaml' matches no file now" in n for n in doc["notes"]), doc
    assert "netlab: note: " in res.stderr and "matches no file now" in res.stderr, res.stderr


@pytest.mark.parametrize("pattern, files, why", [
    ("nothing/*.yaml", {}, "matches no file: its folder nothing does not exist; patterns are relative to the "
                           "topology's folder"),
    ("pol/deny.yaml", {"pol/other.yaml": POLICY}, "no such file; patterns are relative to the topology's folder"),
])
def test_a_missing_folder_or_a_missing_named_file_is_still_refused(tmp_path, pattern, files, why):
    path = written(tmp_path, pattern, files)
    with pytest.raises(TopologyError) as exc:
        load(path, running=False)
    [problem] = exc.value.problems
    assert (problem.line, problem.field, problem.message) == (4, "include[0]", f"{pattern!r} {why}"), problem
