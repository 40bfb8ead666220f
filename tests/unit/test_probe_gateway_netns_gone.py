"""`probe` and `policy table` of a running lab whose simulated internet's GATEWAY (or load balancer) namespace was
deleted behind netlab's back (`ip netns delete fk-gateway`; fake kernel).

QA q37 2: they said "gateway: its flows not probed: namespace fk-gateway was deleted ..." and "(1 internet host not
probed: its namespace was deleted)": the gateway is no internet host (the topology's `internet.hosts` has h1 only)
and sends no probes of its own (egress probes go through it). Now its note says what it is, with status's line
for it and `up` as the fix, and the run still fails: exit 1, `error`, the failures, a failed JUnit case.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from cli_inprocess import run_cli
from fake_lab import machine_holds, up

from netlab.api.jsonio import from_json
from netlab.api.results_probe import ProbeReport
from netlab.cli import policy as cli_policy, probe as cli_probe
from netlab.errors import netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.probe import early, listeners, policytable, report as render, runner
from netlab.probe.tasks import Observation, Output
from netlab.realize import state_dir

TOPO = """name: fk
nodes:
  - {name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}
  - {name: n2, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, node: n1, ip: 10.244.0.2, labels: {app: a}}
  - {name: b, node: n2, ip: 10.244.1.3}
services:
  - {name: web, type: LoadBalancer, selector: {app: a}, ports: [{port: 80, targetPort: 8080}]}
internet: {hosts: [{name: h1, ip: 203.0.113.10}]}
"""


def gone_line() -> str:
    """The line, its command under the test's state folder (errors.netlab_command, set once the fixtures ran)."""
    return f"namespace fk-{{}} was deleted while lab fk is up; `{netlab_command('up --lab fk')}` makes it again"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    model = resolve(load_topology(str(path)))
    kernel = FakeKernel()
    up(model, kernel)
    machine_holds(monkeypatch, kernel)

    def send(model, probes, timeout, arp, budget=None, dists=(), workers=0, early=None):
        obs = {i: Observation(outcome="reply") for i in range(len(probes))}
        return Output(obs, {p.netns: str(p.ip) for p in model.pods}, {}, {}), listeners.Listeners(0)

    monkeypatch.setattr(runner, "_send", send)
    return model


def _deleted(monkeypatch, *names: str) -> None:
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns not in {f"fk-{n}" for n in names})


def test_probe_says_the_gateway_is_the_internets_not_an_internet_host_and_fails(lab, monkeypatch):
    _deleted(monkeypatch, "gateway")
    line = gone_line().format("gateway")
    report = runner.run(lab)
    assert report.deleted == [line] and report.deleted_kinds == ["gateway"]
    assert f"gateway, the internet's gateway: {line}" in report.notes
    assert not [n for n in report.notes if "its flows not probed" in n], report.notes
    assert not report.ok
    text = render.text(report)  # (the stand-in agent answers DNS questions with nothing: those fail too)
    assert "internet host not probed" not in text and "gateway: its flows" not in text, text
    lines = text.splitlines()
    [summary] = [x for x in lines if x.startswith("*** ") and " probes as expected" in x]
    assert " probes as expected (the internet's gateway: its namespace was deleted) in " in summary, summary
    assert lines[-1] == f"  {line}" and f"  {line}" not in lines[:-1], text
    assert lines[lines.index("*** not there") + 1] == f"gateway, the internet's gateway: {line}", text
    got = render.to_json(report)
    assert got["ok"] is False and from_json(ProbeReport, got).failures[-1] == line
    # one count in the text ("N not as expected:"), JUnit's failures and the JSON's summary (QA q43 5)
    said = int(next(x for x in lines if x.endswith(" not as expected:")).split()[0])
    junit = ElementTree.fromstring(render.junit(report)).get("failures")
    assert got["summary"]["not_as_expected"] == said == int(junit) == len(from_json(ProbeReport, got).failures), \
        (got["summary"], said, junit)
    assert f"gateway, the internet's gateway: {line}" in got["not_probed"]
    suite = ElementTree.fromstring(render.junit(report))
    assert [(c.get("name"), c.find("failure").get("message")) for c in suite.iter("testcase")
            if c.find("failure") is not None and c.find("failure").get("type") == "namespace"] == [
        ("namespace fk-gateway is there", line)]


def test_a_pod_and_a_host_are_said_apart(lab, monkeypatch):
    _deleted(monkeypatch, "h1", "a")  # (no load balancer namespace: the gateway routes LoadBalancer IPs)
    report = runner.run(lab)
    assert report.deleted_kinds == ["pod", "host"]
    assert f"h1: its flows not probed: {gone_line().format('h1')}" in report.notes
    assert render.summary_line(report).endswith(" (1 pod and 1 internet host not probed: their namespaces were "
                                                "deleted)")
    failures = from_json(ProbeReport, render.to_json(report)).failures
    assert failures[-2:] == tuple(report.deleted), failures


def test_probe_and_policy_table_cli_say_the_gateways_line_exit_1(lab, monkeypatch):
    _deleted(monkeypatch, "gateway")
    line = gone_line().format("gateway")
    monkeypatch.setattr(cli_probe, "require_root", lambda: None)
    monkeypatch.setattr(early, "begin", lambda *a: None)
    got = run_cli("probe", "--lab", "fk", "-o", "json")
    data = json.loads(got.stdout)
    assert (got.returncode, data["ok"], data["error"]) == (1, False, line), got
    table = policytable.probe(lab)
    assert table.notes == [f"gateway, the internet's gateway: {line}"] and table.deleted == [line]
    assert table.render().splitlines()[-1].endswith(" s (the internet's gateway: its namespace was deleted)")
    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    got = run_cli("policy", "table", "--lab", "fk")
    assert (got.returncode, got.stderr) == (1, f"netlab: {line}\n"), got
    assert "internet host not probed" not in got.stdout and "its flows not probed" not in got.stdout, got.stdout
    got = run_cli("policy", "table", "--lab", "fk", "-o", "json")
    assert (got.returncode, json.loads(got.stdout)["error"]) == (1, line), got
