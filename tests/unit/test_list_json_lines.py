"""`list -o json` said its labs' lines (an `up` killed halfway, a lab under another state folder, a pytest lab whose
owner ended) only in each row's `error`, where the text `list` and `status -o json` print them on stderr too
(QA q43 6): warnings and notes go to stderr whatever -o is (README), stdout holds the JSON alone."""

from __future__ import annotations

import json

from click.testing import CliRunner

from netlab import api
from netlab.api.results import LabInfo
from netlab.cli import cli

KILLED = ("lab q1: the `netlab up` that was making it (pid 42) ended before it finished (killed); "
          "`sudo netlab down --lab q1` takes away what it made")
ELSEWHERE = "lab q2 is up under state folder /tmp/other, not /run/netlab: use that folder"
ROWS = (LabInfo("q1", "interrupted", 5, 2, 2, "/t/k.yaml", error=KILLED),
        LabInfo("q2", "elsewhere", None, None, None, None, error=ELSEWHERE),
        LabInfo("q3", "up", 3, 1, 1, "/t/p.yaml", owner="pytest (pid 7)", owner_gone=True),
        LabInfo("q4", "up", 3, 1, 1, "/t/q.yaml"))


def test_list_json_says_its_labs_lines_on_stderr_as_the_text_does(monkeypatch):
    from netlab.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(api, "labs", lambda: ROWS)
    text = CliRunner().invoke(cli, ["list"])
    as_json = CliRunner().invoke(cli, ["list", "-o", "json"])
    assert text.exit_code == as_json.exit_code == 0, (text, as_json)
    lines = as_json.stderr.splitlines()
    assert lines == text.stderr.splitlines() and len(lines) == 3, as_json.stderr  # it was empty
    assert lines[:2] == [f"netlab: {KILLED}", f"netlab: {ELSEWHERE}"]
    assert "lab q3 was brought up by pytest (pid 7), which has ended" in lines[2]
    rows = json.loads(as_json.stdout)  # stdout: the JSON alone
    assert [r["lab"] for r in rows] == ["q1", "q2", "q3", "q4"] and rows[0]["error"] == KILLED


def test_list_json_writes_every_documented_key_of_a_row_null_when_it_does_not_apply(monkeypatch):
    """A row left out ``error``, ``owner`` and ``owner_gone`` when they were null, where docs/json.md's other
    documents write every key, null when it does not apply (as status's ``error``, trace's ``observe``)."""
    from netlab.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(api, "labs", lambda: ROWS)
    got = CliRunner().invoke(cli, ["list", "-o", "json"])
    assert got.exit_code == 0, got
    rows = {r["lab"]: r for r in json.loads(got.stdout)}
    keys = ["lab", "phase", "namespaces", "nodes", "pods", "source", "error", "owner", "owner_gone"]
    assert all(list(row) == keys for row in rows.values()), rows
    from test_json_vocabulary import _doc_row_keys

    assert set(keys) <= _doc_row_keys("list")  # the doc's row names them all
    assert [rows[lab][k] for lab in ("q1", "q4") for k in ("error", "owner", "owner_gone")] == [
        KILLED, None, None, None, None, None]
    assert (rows["q3"]["error"], rows["q3"]["owner"], rows["q3"]["owner_gone"]) == (None, "pytest (pid 7)", True)
