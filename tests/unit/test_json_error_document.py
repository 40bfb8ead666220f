"""`-o json` (and `-o yaml`) when a command fails before its own document: one error document on stdout.

A script that asked for JSON got an empty stdout and one text line on stderr on exit 2 or 3 (`plan -t
/nonexistent.yaml -o json`, `status --lab nope -o json`, `up -t bad.yaml -o json`), where `validate` alone gave
a document. Now the error boundary writes `{"error", "exit_code", "file", "line", "field", "problems"}` on stdout
(the stderr line stays), docs/json.md "When a command fails"; a command that wrote its own document (validate's
`valid: false`, status's with its `error`) gets no second one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
import yaml

from netlab.cli import boundary
from netlab.cli.output import output_option, print_json
from netlab.errors import EnvironmentNotReady, Problem, TopologyError, UsageError

KEYS = ["error", "exit_code", "file", "line", "field", "problems"]


def command(raise_it, document: bool = False) -> click.Command:
    @click.command()
    @click.option("--lab")
    @click.option("--count", type=int)
    @output_option("text", "json")
    def x(lab: str | None, count: int | None, output: str) -> None:
        if document:
            print_json({"lab": lab, "error": "its own"})
        raise_it()
    return x


def run(monkeypatch, capsys, cmd: click.Command, *argv: str) -> tuple[object, str, str]:
    monkeypatch.setattr(boundary, "cli", cmd)
    with pytest.raises(SystemExit) as ended:
        boundary.main(list(argv))
    out, err = capsys.readouterr()
    return ended.value.code, out, err


def _raise(exc: BaseException):
    def it() -> None:
        raise exc
    return it


def test_a_user_error_under_json_is_a_document_on_stdout_and_its_line_on_stderr(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, command(_raise(UsageError("no lab nope is up"))), "-o", "json",
                         "--lab", "nope")
    assert (code, err) == (2, "netlab: no lab nope is up\n")
    doc = json.loads(out)
    assert list(doc) == KEYS
    assert doc == {"error": "no lab nope is up", "exit_code": 2, "file": None, "line": None, "field": None,
                   "problems": []}


def test_a_topology_error_names_its_first_place_and_lists_every_problem(monkeypatch, capsys):
    exc = TopologyError([Problem("/t/bad.yaml", 4, "pods[0].node", "no node n9"),
                         Problem("/t/bad.yaml", 2, "name", "not a lab name")])
    code, out, err = run(monkeypatch, capsys, command(_raise(exc)), "-o", "json")
    assert code == 2 and err.splitlines()[0] == "/t/bad.yaml:2: name: not a lab name"
    doc = json.loads(out)
    assert doc["error"] == "/t/bad.yaml:2: name: not a lab name"
    assert (doc["file"], doc["line"], doc["field"], doc["exit_code"]) == ("/t/bad.yaml", 2, "name", 2)
    assert doc["problems"] == [{"file": "/t/bad.yaml", "line": 2, "field": "name", "message": "not a lab name"},
                               {"file": "/t/bad.yaml", "line": 4, "field": "pods[0].node", "message": "no node n9"}]


def test_yaml_gets_the_same_document_in_yaml(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, command(_raise(EnvironmentNotReady("netlab needs root"))),
                       "-o", "yaml")
    assert code == 3 and yaml.safe_load(out) == {"error": "netlab needs root", "exit_code": 3, "file": None,
                                                 "line": None, "field": None, "problems": []}


def test_a_command_that_wrote_its_own_document_gets_no_second_one(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, command(_raise(UsageError("late")), document=True), "-o", "json")
    assert code == 2 and json.loads(out) == {"lab": None, "error": "its own"} and err == "netlab: late\n"


def test_text_output_stays_text_and_a_stop_signal_writes_no_document(monkeypatch, capsys):
    code, out, err = run(monkeypatch, capsys, command(_raise(UsageError("no lab"))))
    assert (code, out, err) == (2, "", "netlab: no lab\n")
    stopped = UsageError("interrupted by SIGTERM")
    stopped.exit_code = 143
    code, out, _ = run(monkeypatch, capsys, command(_raise(stopped)), "-o", "json")
    assert (code, out) == (143, "")


def test_a_value_click_refuses_is_a_document_too_whatever_the_order_given(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, command(_raise(UsageError("x"))), "--count", "many", "-o", "json")
    assert code == 2 and json.loads(out)["error"] == "Invalid value for '--count': 'many' is not a valid integer."
    # a command line click cannot read as far as -o (an unknown option): the line alone
    code, out, err = run(monkeypatch, capsys, command(_raise(UsageError("x"))), "--bogus", "-o", "json")
    assert (code, out) == (2, "") and "No such option '--bogus'" in err


def _netlab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_commands_write_the_error_document_on_stdout(tmp_path):
    plan = _netlab("plan", "-t", "/nonexistent/netlab.yaml", "-o", "json")
    doc = json.loads(plan.stdout)
    assert plan.returncode == doc["exit_code"] == 2 and plan.stderr.startswith("/nonexistent/netlab.yaml: ")
    assert doc["error"] == plan.stderr.rstrip("\n") and doc["file"] == "/nonexistent/netlab.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: sabad\nnodes: [{name: n1}]\npods: [{name: a, node: n9}]\n")
    up = _netlab("up", "-t", str(bad), "-o", "json", env={"NETLAB_STATE_DIR": str(tmp_path / "st")})
    doc = json.loads(up.stdout)
    assert up.returncode == doc["exit_code"] == 2, up
    assert (doc["file"], doc["line"]) == (str(bad), 3) and doc["problems"][0]["file"] == str(bad), doc
    if os.geteuid() == 0:
        status = _netlab("status", "--lab", "sanope", "-o", "json", env={"NETLAB_STATE_DIR": str(tmp_path / "st")})
        doc = json.loads(status.stdout)
        assert status.returncode == doc["exit_code"] == 2 and status.stderr == f"netlab: {doc['error']}\n", status
    valid = _netlab("validate", "-t", str(bad), "-o", "json")  # its own document, as before
    assert valid.returncode == 2 and json.loads(valid.stdout)["valid"] is False


def test_a_problem_about_no_field_has_a_null_field_in_problems_too(monkeypatch, capsys):
    """A file that cannot be read is a problem of no field (``field`` ""): null, as the document's own ``field``
    (docs/json.md), not "" in ``problems`` beside a null at the top (QA qa56d)."""
    exc = TopologyError([Problem("/t/missing.yaml", None, "", "no such file")])
    code, out, _ = run(monkeypatch, capsys, command(_raise(exc)), "-o", "json")
    doc = json.loads(out)
    assert code == 2 and doc["field"] is None and doc["problems"][0]["field"] is None, doc


def test_validate_lists_a_problem_of_no_field_with_a_null_field(tmp_path):
    """``validate -o json`` of a missing file wrote ``"field": ""`` where ``plan -o json``'s error document wrote
    null for the same problem (QA qa59o): one shape for a problem in every document."""
    missing = str(tmp_path / "missing.yaml")
    valid = _netlab("validate", "-t", missing, "-o", "json")
    plan = _netlab("plan", "-t", missing, "-o", "json")
    problems = json.loads(valid.stdout)["problems"]
    assert valid.returncode == plan.returncode == 2 and problems == json.loads(plan.stdout)["problems"], problems
    assert problems[0]["field"] is None, problems
