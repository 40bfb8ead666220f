"""`probe` and `policy table` of a running lab whose NODE n1's namespace was deleted behind netlab's back (`ip netns
delete fk-n1` while a process holds it, so its pods' veths work on), and of one whose underlay's was (fake kernel).

- QA q31 #1: probe left every probe from n1 out (runner.missing_sources) but named and failed only pods
  (deleted_pods walked lab.pods): "N/N probes as expected", exit 0, no n1 row, nothing in JSON or JUnit. n1 is now
  named as a deleted pod is: a note, the summary, the last failure line, `error`, a failed JUnit case, exit 1; and
  in `policy table` (whose rows are pods: n1 has none) a note, the summary and exit 1.
- QA q31 #4: a deleted underlay said "lab fk is not up ...; start it with `up -t FILE`" (exit 3) of a lab `list`
  shows up; now status's words ("namespace fk-underlay was deleted while lab fk is up; `up` makes it again"),
  exit 1 as a lab that is not as planned.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from cli_inprocess import run_cli
from fake_lab import machine_holds, make_lab, probed_with_one_gone, up

from netlab.api.jsonio import from_json
from netlab.api.results_probe import ProbeReport
from netlab.cli import policy as cli_policy, probe as cli_probe
from netlab.errors import NetlabError, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.probe import early, policytable, report as render, runner

lab = pytest.fixture(make_lab, name="lab")


def gone_line() -> str:
    """The line, its command under the test's state folder (errors.netlab_command, set once the fixtures ran)."""
    return f"namespace fk-n1 was deleted while lab fk is up; `{netlab_command('up --lab fk')}` makes it again"


@pytest.fixture
def sent(lab, monkeypatch):
    """The lab up on the fake kernel, node n1's namespace deleted (held: its pods answer on); the agent stood in
    for: every probe it is given is answered, every pod's eth0 read."""
    return probed_with_one_gone(lab, monkeypatch, "fk-n1")


def test_probe_names_a_deleted_node_and_fails(lab, sent):
    report = runner.run(lab)
    assert sent and all(p.source.name != "n1" for p in sent)  # nothing sent from a namespace that is not there
    assert report.results and all(r.ok for r in report.results)
    assert report.deleted == [gone_line()] and report.deleted_kinds == ["node"]
    assert f"n1: its flows not probed: {gone_line()}" in report.notes
    assert not report.ok  # the lab is not as planned
    n = len(report.results)
    text = render.text(report).splitlines()
    assert text[-3].startswith(f"*** {n}/{n} probes as expected (1 node not probed: its namespace was deleted)")
    assert text[-2:] == ["1 not as expected:", f"  {gone_line()}"]
    got = render.to_json(report)
    assert got["ok"] is False and f"n1: its flows not probed: {gone_line()}" in got["not_probed"]
    assert from_json(ProbeReport, got).failures == (gone_line(),)  # the Python API's: one line each
    suite = ElementTree.fromstring(render.junit(report))
    assert suite.get("failures") == "1"
    assert [(c.get("name"), c.find("failure").get("message")) for c in suite.iter("testcase")
            if c.find("failure") is not None] == [("namespace fk-n1 is there", gone_line())]


def test_a_deleted_pod_and_node_are_counted_apart(lab, sent, monkeypatch):
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns not in ("fk-n1", "fk-a"))
    report = runner.run(lab)
    assert report.deleted_kinds == ["pod", "node"] and len(report.deleted) == 2
    assert render.summary_line(report).endswith(" (1 pod and 1 node not probed: their namespaces were deleted)")


def test_probe_cli_says_a_deleted_node_on_stderr_and_in_json_error_exit_1(lab, sent, monkeypatch):
    monkeypatch.setattr(cli_probe, "require_root", lambda: None)
    monkeypatch.setattr(early, "begin", lambda *a: None)
    got = run_cli("probe", "--lab", "fk")
    assert (got.returncode, got.stderr) == (1, f"netlab: {gone_line()}\n"), got
    got = run_cli("probe", "--lab", "fk", "-o", "json")
    data = json.loads(got.stdout)
    assert (got.returncode, data["ok"], data["error"]) == (1, False, gone_line()), got
    assert "n1" not in {p["source"] for p in data["probes"]}


def test_policy_table_names_a_deleted_node_and_exits_1(lab, sent, monkeypatch):
    table = policytable.probe(lab)
    assert all(f.reached for f in table.flows)  # n1 has no row: its pods' flows are sent, and answered
    assert table.notes == [f"n1: its flows not probed: {gone_line()}"] and table.deleted == [gone_line()]
    assert table.render().splitlines()[-1].endswith(" s (1 node not probed: its namespace was deleted)")
    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    got = run_cli("policy", "table", "--lab", "fk")
    assert (got.returncode, got.stderr) == (1, f"netlab: {gone_line()}\n"), got
    got = run_cli("policy", "table", "--lab", "fk", "-o", "json")
    assert (got.returncode, json.loads(got.stdout)["error"]) == (1, gone_line()), got


def underlay_gone() -> str:
    """The line, its command under the test's state folder (errors.netlab_command, set once the fixtures ran)."""
    return f"namespace fk-underlay was deleted while lab fk is up; `{netlab_command('up --lab fk')}` makes it again"


def test_probe_of_a_lab_whose_underlay_was_deleted_says_status_s_words_exit_1(lab, monkeypatch):
    kernel = FakeKernel()
    up(lab, kernel)
    kernel.delete_netns("fk-underlay")
    machine_holds(monkeypatch, kernel)
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns in kernel.ns)
    with pytest.raises(NetlabError) as info:
        runner.run(lab)
    assert (str(info.value), info.value.exit_code) == (underlay_gone(), 1)
    monkeypatch.setattr(cli_probe, "require_root", lambda: None)
    monkeypatch.setattr(early, "begin", lambda *a: None)
    monkeypatch.setattr(cli_policy, "require_root", lambda: None)
    for args in (("probe",), ("policy", "table")):
        got = run_cli(*args, "--lab", "fk")
        assert (got.returncode, got.stdout, got.stderr) == (1, "", f"netlab: {underlay_gone()}\n"), got
