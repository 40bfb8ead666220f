"""`probe` of a running lab whose pod a's namespace was deleted behind netlab's back (`ip netns delete fk-a`), on
the fake kernel: what it says, counts and exits with.

Its probes from a were errors ("namespace fk-a does not exist"), judged as any unreached probe: failures where a
reply was expected, "unreachable as expected" where none was, and a rule-3 failure of a (its eth0 unread: "sees
itself as no address"); nothing named the deletion as exec, trace and `policy
table` do. Now a's flows are not probed (no result, no rule-3 check of a), a note and a line on stderr name it in
exec's words, JSON's `error` carries that line, and the run is no pass (exit 1). A Completed pod's flows are not
probed either, but that pod is as planned: the run passes.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab, probed_with_one_gone

from netlab.api.jsonio import from_json
from netlab.api.results_probe import ProbeReport
from netlab.cli import probe as cli_probe
from netlab.errors import netlab_command
from netlab.probe import early, report as render, runner

lab = pytest.fixture(make_lab, name="lab")


def gone_line() -> str:
    """The line, its command under the test's state folder (errors.netlab_command, set once the fixtures ran)."""
    return f"namespace fk-a was deleted while lab fk is up; `{netlab_command('up --lab fk')}` makes it again"


@pytest.fixture
def sent(lab, monkeypatch):
    """The lab up on the fake kernel, pod a's namespace deleted; the agent stood in for: every probe it is given
    is answered, every pod's eth0 read (a's too: the run must not ask for it)."""
    return probed_with_one_gone(lab, monkeypatch, "fk-a")


def test_probe_leaves_a_deleted_pod_s_flows_out_names_it_and_fails(lab, sent):
    report = runner.run(lab)
    assert sent and all(p.source.name != "a" for p in sent)  # nothing sent from a namespace that is not there
    assert any(p.destination.name == "a" for p in sent)  # to it: its processes may hold it; what they answer counts
    assert report.results and all(r.probe.source.name != "a" for r in report.results)  # not probed, not "as expected"
    assert all(r.ok for r in report.results) and [c.pod for c in report.self_checks] == ["b"]
    assert report.deleted == [gone_line()] and f"a: its flows not probed: {gone_line()}" in report.notes
    assert not report.ok  # the lab is not as planned
    n = len(report.results)
    text = render.text(report).splitlines()
    assert text[-3].startswith(f"*** {n}/{n} probes as expected (1 pod not probed: its namespace was deleted)")
    assert text[-2:] == ["1 not as expected:", f"  {gone_line()}"]
    got = render.to_json(report)
    assert got["ok"] is False and f"a: its flows not probed: {gone_line()}" in got["not_probed"]
    assert got["summary"]["not_as_expected"] == 1  # as the text's "1 not as expected" and JUnit's (QA q43 5)
    assert from_json(ProbeReport, got).failures == (gone_line(),)  # the Python API's: "empty when ok", one line each
    suite = ElementTree.fromstring(render.junit(report))  # --junit: no all-green suite for a run that exits 1
    assert (suite.get("tests"), suite.get("failures")) == (str(n + 2), "1")  # b's rule-3 check, a's deletion
    assert [f.get("message") for f in suite.iter("failure")] == [gone_line()]


def test_a_completed_pod_is_left_out_but_passes_a_deleted_one_does_not(lab, sent):
    report = runner.run(lab.with_terminal(frozenset({"a"})))  # Completed: its sandbox torn down, as planned
    assert report.ok and report.deleted == [] and all(gone_line() not in n for n in report.notes)
    assert report.notes[0].startswith("pod a has terminated")


def test_probe_cli_says_it_on_stderr_and_in_json_error_exit_1(lab, sent, monkeypatch):
    monkeypatch.setattr(cli_probe, "require_root", lambda: None)
    monkeypatch.setattr(early, "begin", lambda *a: None)
    got = run_cli("probe", "--lab", "fk")
    assert got.returncode == 1 and got.stderr == f"netlab: {gone_line()}\n", got
    assert f"a: its flows not probed: {gone_line()}" in got.stdout.splitlines()
    got = run_cli("probe", "--lab", "fk", "-o", "json")
    assert got.returncode == 1 and got.stderr == f"netlab: {gone_line()}\n", got
    data = json.loads(got.stdout)
    # the text's "1 not as expected" and JUnit's failures="1" (QA q43 5): the deleted namespace is one
    assert (data["ok"], data["error"], data["summary"]["not_as_expected"]) == (False, gone_line(), 1)
    assert {p["source"] for p in data["probes"]} == {"b", "n1", "n2"}
