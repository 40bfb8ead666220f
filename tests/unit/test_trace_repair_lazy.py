"""`netlab trace` and `quiz answer` work out the lab's repair (realize.state.repair_up, which reads and validates the
lab's file: source_changed, 0.23-0.27 s at 500 pods) only when a line naming it is printed: a trace whose text
names no repair never reads the file (the last pass read it for every trace, to build a command most never print).
The trace's walk is stood in for on the fake kernel's lab."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli
from fake_lab import make_lab

from netlab.cli import trace as cli_trace
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import source_edit, state as state_mod
from netlab.trace import run as trace_run
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult
from netlab.trace.verdict import Verdict

lab = pytest.fixture(make_lab, name="lab")
FIX = "ip netns exec fk-n1 sysctl -w net.ipv4.ip_forward=1"  # a fix `up` puts right too: its line names the repair


def _result(model, src: str, dst: str, kw: dict, lost: bool) -> TraceResult:
    """The walk's result, its repair kept as trace.run keeps the one it is given."""
    hop = Hop(netns=f"{model.name}-{src}", where=f"pod {src}", device="eth0", kind="route",
              decision="dropped" if lost else "delivered")
    verdict = Verdict(False, 0, "ip_forward is off", fix=FIX) if lost else Verdict(True, None, "")
    r = TraceResult(lab=model.name, src={"name": src, "kind": "pod", "ip": "10.244.0.2"},
                    dst={"name": dst, "kind": "pod", "ip": "10.244.1.3"}, proto="icmp", port=None, marker="m",
                    forward=Walk(hops=[hop], outcome="stopped" if lost else "delivered"), reply=None,
                    verdict=verdict, reply_verdict=None, reply_received=not lost)
    repair = kw["repair"]
    if callable(repair):
        from netlab.trace.later import Later

        r.repair_later = Later(repair)
    else:
        r.repair = repair
    return r


@pytest.fixture
def counted(lab, monkeypatch, tmp_path):
    """The lab up from its file on the fake kernel; how many times the file was read for its repair."""
    kernel = FakeKernel()
    lab_up.up(lab, kernel, source=str(tmp_path / "t.yaml"), journal=Journal(kernel))
    monkeypatch.setattr(cli_trace, "require_root", lambda: None)
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda ns: True)
    reads: list[str] = []
    real = source_edit.source_changed
    monkeypatch.setattr(source_edit, "source_changed", lambda st: reads.append(st.lab) or real(st))
    return reads


@pytest.mark.parametrize("output", ["text", "svg"])
def test_a_trace_whose_text_names_no_repair_never_reads_the_labs_file(lab, counted, monkeypatch, output):
    monkeypatch.setattr(trace_run, "run", lambda model, src, dst, **kw: _result(model, src, dst, kw, lost=False))
    got = run_cli("trace", "--lab", lab.name, "a", "b", *(["-o", output] if output != "text" else []))
    assert got.returncode == 0, got
    assert "repairs the lab" not in got.stdout
    assert counted == [], "the lab's file was read for a repair no line names"


def test_a_line_naming_the_repair_reads_the_file_once_and_names_the_files_up(lab, counted, monkeypatch):
    monkeypatch.setattr(trace_run, "run", lambda model, src, dst, **kw: _result(model, src, dst, kw, lost=True))
    got = run_cli("trace", "--lab", lab.name, "a", "b")
    assert got.returncode == 1, got
    assert f"  fix: {FIX}   (or: {state_mod.up_command(state_mod.load_state(lab.name).source)}, which repairs the lab)" in got.stdout, got
    assert counted == [lab.name]


def test_trace_json_names_the_repair(lab, counted, monkeypatch):
    monkeypatch.setattr(trace_run, "run", lambda model, src, dst, **kw: _result(model, src, dst, kw, lost=False))
    got = run_cli("trace", "--lab", lab.name, "a", "b", "-o", "json")
    assert json.loads(got.stdout)["repair"] == state_mod.up_command(state_mod.load_state(lab.name).source), got
    assert counted == [lab.name]


def test_quiz_answer_works_out_the_repair_only_when_its_trace_names_it(monkeypatch):
    """quiz answer's trace of the fault (no root: the quiz and its lab are faked as test_quiz_answer_order fakes them):
    the repair it gives the trace is worked out when the trace asks for it, not before."""
    from click.testing import CliRunner
    from test_quiz_answer_order import SHOWN, _faked

    from netlab.cli import cli
    from netlab.workload import reconfigure

    _faked(monkeypatch, [], 1)
    asked: list[str] = []
    monkeypatch.setattr(reconfigure, "repair_up", lambda state: asked.append(state.lab) or "sudo netlab up --lab qz")
    given: list = []
    # a trace that shows the fault (its JSON read without the repair: to_json(repair=...) asks for none)
    monkeypatch.setattr(trace_run, "run", lambda *a, **kw: given.append(kw["repair"]) or types.SimpleNamespace(
        to_json=lambda repair=None: SHOWN))
    result = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert result.exit_code == 0 and len(given) == 1, (result.output, result.exception)
    assert asked == [], "quiz answer worked out a repair its trace never named"
    assert given[0]() == "sudo netlab up --lab qz" and asked == ["qz"]
