"""``netlab policy table -t FILE`` (probing) judges the kernel by FILE's policies, as ``probe -t FILE`` and
``--no-probe`` do. It judged by the policies the lab's last ``up`` applied: after a policy edited in the file
without ``up`` it said "8/8 flows as the policies say", exit 0, while the file allowed a flow the kernel blocks."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.api.topology import load
from netlab.cli import policy as cli_policy
from netlab.errors import netlab_command
from netlab.probe import policytable

DENY = []
ALLOW_B = [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]


def topology(ingress: list, pods: tuple[str, ...] = ("a", "b")) -> str:
    return json.dumps({
        "name": "qnp1", "nodes": [{"name": "n1"}],
        "pods": [{"name": p, "node": "n1", "labels": {"app": p}} for p in pods],
        "networkPolicies": [{"name": "p", "spec": {
            "podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"], "ingress": ingress}}]})


@pytest.fixture
def table_of(monkeypatch, tmp_path):
    """`netlab policy table -t FILE` of the running lab qnp1 (a, b; its policy p denies all ingress into a), FILE
    being written with ``ingress``; the kernel reaches what the running lab's policies allow."""
    running = load(json.loads(topology(DENY)), running=False).lab
    path = tmp_path / "lab.yaml"
    lab = types.SimpleNamespace(name="qnp1", model=running, _served=lambda state=None: running,  # none terminated
                                state=lambda: types.SimpleNamespace(source=str(path), phase="up"),
                                _loaded_for=lambda topo: load(topo, "qnp1", running=False))
    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    kernel = {(f.src, f.dst, f.proto, f.port): f.allowed for f in policytable.evaluate(running).flows}

    def probe(model, timeout, **kw):
        table = policytable.evaluate(model)
        for f in table.flows:
            f.reached = kernel[(f.src, f.dst, f.proto, f.port)]
        return table
    monkeypatch.setattr(policytable, "probe", probe)

    def run(ingress: list, *args: str, pods: tuple[str, ...] = ("a", "b")):
        path.write_text(topology(ingress, pods))
        return run_cli("policy", "table", "-t", str(path), *args)
    return run, str(path)


def test_the_file_as_the_lab_runs_it_passes_without_a_note(table_of):
    run, _ = table_of
    res = run(DENY)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "8/8 flows as the policies say" in res.stdout


def test_a_policy_edited_in_the_file_without_up_is_a_mismatch_said_in_a_note(table_of):
    run, path = table_of
    res = run(ALLOW_B)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "MISMATCH b -> a tcp/8080: allowed but BLOCKED (allowed by policy default/p" in res.stdout
    assert "6/8 flows as the policies say" in res.stdout
    assert res.stderr == (f"netlab: note: lab qnp1 runs other policies than {path}: 2 flows judged otherwise "
                          f"(first: b -> a tcp/8080, allowed by the file); the table judges the file's; "
                          f"`{netlab_command(f'up -t {path}')}` applies them\n")
    data = json.loads(run(ALLOW_B, "-o", "json").stdout)
    assert data["mismatches"] == 2 and {(f["source"], f["destination"], f["allowed"], f["reached"])
                                        for f in data["flows"] if f["mismatch"]} == {("b", "a", True, False)}
    res = run(ALLOW_B, "--no-probe")  # evaluated alone, no lab read: the file's policies
    assert res.returncode == 0 and "b         . ." in res.stdout and res.stderr == ""


def test_a_file_with_a_pod_the_lab_lacks_is_refused_in_one_line(table_of):
    run, path = table_of
    res = run(DENY, pods=("a", "b", "c"))
    assert res.returncode == 2 and res.stdout == "", res.stdout
    assert res.stderr.startswith(f"netlab: {path}: pod c (") and "is not in the lab qnp1 that is up: policy table -t " \
        "FILE checks a file's expectations on the lab as it is" in res.stderr, res.stderr


def test_the_note_is_in_the_tables_json_document_too(table_of):
    """QA out59 2: `policy table -t FILE -o json` said the note on stderr alone, its `notes` []: a script saw the
    mismatches and never why. The document's `notes` has it first (README: a note is on stderr whatever -o is,
    and in the document); the text says it once, on stderr, as before."""
    run, path = table_of
    res = run(ALLOW_B, "-o", "json")
    note = (f"lab qnp1 runs other policies than {path}: 2 flows judged otherwise (first: b -> a tcp/8080, allowed by "
            f"the file); the table judges the file's; `{netlab_command(f'up -t {path}')}` applies them")
    assert res.returncode == 1 and res.stderr == f"netlab: note: {note}\n", res.stderr
    assert json.loads(res.stdout)["notes"] == [note]
    assert note not in run(ALLOW_B).stdout  # the text: on stderr alone
    assert json.loads(run(DENY, "-o", "json").stdout)["notes"] == []
