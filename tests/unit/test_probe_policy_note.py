"""``netlab probe -t FILE`` says, as ``policy table -t FILE`` does, when the running lab's NetworkPolicies judge a
flow otherwise than FILE's (the file edited, not `up` since): probe judges by the file's and said nothing, so a
flow it expects but the kernel blocks looked like a network fault, not a policy the lab does not run yet."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.api.topology import load
from netlab.cli import probe as cli_probe
from netlab.errors import netlab_command
from netlab.probe import policytable, report as render, runner

DENY: list = []
ALLOW_B = [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]


def topology(ingress: list) -> str:
    return json.dumps({
        "name": "qnp2", "nodes": [{"name": "n1"}],
        "pods": [{"name": p, "node": "n1", "labels": {"app": p}} for p in ("a", "b")],
        "networkPolicies": [{"name": "p", "spec": {
            "podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"], "ingress": ingress}}]})


@pytest.fixture
def probe_of(monkeypatch, tmp_path):
    """`netlab probe -t FILE` of the running lab qnp2 (a, b; its policy p denies all ingress into a), FILE written
    with ``ingress``; the run itself is faked (it passes): what it was given is kept."""
    running = load(json.loads(topology(DENY)), running=False).lab
    path = tmp_path / "lab.yaml"
    lab = types.SimpleNamespace(name="qnp2", model=running, _served=lambda state=None: running,
                                state=lambda: types.SimpleNamespace(source=str(path), phase="up"),
                                _loaded_for=lambda topo: load(topo, "qnp2", running=False))
    monkeypatch.setattr(cli_probe, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    given = []
    monkeypatch.setattr(runner, "run", lambda model, **kw: given.append(model) or types.SimpleNamespace(
        ok=True, deleted=[]))
    monkeypatch.setattr(render, "text", lambda report: "all as expected")

    def run(ingress: list):
        path.write_text(topology(ingress))
        return run_cli("probe", "-t", str(path))
    return run, str(path), given


def test_the_file_as_the_lab_runs_it_probes_without_a_note(probe_of):
    run, _, given = probe_of
    res = run(DENY)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout == "all as expected\n" and len(given) == 1


def test_a_policy_edited_in_the_file_without_up_is_said_in_policy_tables_note(probe_of):
    run, path, given = probe_of
    res = run(ALLOW_B)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr == (f"netlab: note: lab qnp2 runs other policies than {path}: 2 flows judged otherwise "
                          f"(first: b -> a tcp/8080, allowed by the file); probe judges the file's; "
                          f"`{netlab_command(f'up -t {path}')}` applies them\n")
    allowed = {(f.src, f.dst) for f in policytable.evaluate(given[0]).flows if f.allowed}
    assert ("b", "a") in allowed  # probed as the file says


@pytest.fixture
def report_of(monkeypatch, probe_of):
    """probe_of's run giving back a judged report (no probe in it): what -o json and the API render."""
    from netlab.probe.judge import Report

    monkeypatch.setattr(runner, "run", lambda model, **kw: Report(lab="qnp2", timeout=1.0, results=[],
                                                                   self_checks=[]))
    return probe_of


def the_note(path: str) -> str:
    return (f"lab qnp2 runs other policies than {path}: 2 flows judged otherwise (first: b -> a tcp/8080, allowed "
            f"by the file); probe judges the file's; `{netlab_command(f'up -t {path}')}` applies them")


def test_the_note_is_in_probes_json_document_too(report_of):
    """QA out59 2: `probe -t FILE -o json` said the note on stderr alone (its hints [], no notes): a script reading
    the document never learned its verdicts were the file's, not what the lab runs. A note is in the document
    too (README: on stderr whatever -o is, and in the document), under `notes`, as policy table's."""
    _, path, _ = report_of
    Path(path).write_text(topology(ALLOW_B))
    res = run_cli("probe", "-t", path, "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr == f"netlab: note: {the_note(path)}\n"
    data = json.loads(res.stdout)
    assert data["notes"] == [the_note(path)] and data["hints"] == [] and data["not_probed"] == []
    Path(path).write_text(topology(DENY))
    assert json.loads(run_cli("probe", "-t", path, "-o", "json").stdout)["notes"] == []


def test_the_api_gives_the_note_as_the_reports_notes(report_of, monkeypatch):
    """`Lab.probe(FILE)` said nothing of it at all (the note went to the CLI's stderr callback alone): the
    report's ``notes`` has it, as probe's JSON."""
    from netlab.api import lab_checks
    from netlab.api.lab import Lab

    monkeypatch.setattr(lab_checks, "_require_packets", lambda: None)
    _, path, _ = report_of
    Path(path).write_text(topology(ALLOW_B))
    assert Lab.probe(api.Lab.attach("qnp2"), path).notes == (the_note(path),)  # type: ignore[arg-type]
    Path(path).write_text(topology(DENY))
    assert Lab.probe(api.Lab.attach("qnp2"), path).notes == ()  # type: ignore[arg-type]
