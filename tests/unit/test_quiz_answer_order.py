"""`quiz answer` repairs the lab before it writes a word: `quiz answer X | head -1` killed it with a broken pipe
after "right" and before the repair, leaving the lab broken and the quiz open (no root: the lab is faked)."""

from __future__ import annotations

import types

import click
from click.testing import CliRunner

from netlab import api
from netlab.breaks import quiz as qz, run as brun, symptoms
from netlab.cli import base, breaks as cli_breaks, cli
from netlab.errors import netlab_command
from netlab.realize import state as state_mod
from netlab.trace import render, run as trace_run


# The trace of ip-forward-off on n1 (its JSON, as much of it as the answer reads): lost where the fault is.
SHOWN = {"ok": False, "delivered": False, "lost": {"hop": 5, "netns": "qz-n1", "device": "eth0",
                                                  "reason": "net.ipv4.ip_forward = 0 in qz-n1", "fix": None},
         "reply_lost": None}


def _faked(monkeypatch, events: list[str], before: int, scenario: str = "ip-forward-off",
           traced: dict = SHOWN) -> None:
    """quiz answer on a faked lab qz whose quiz broke ip-forward-off on n1; ``before``: the differences from its
    plan status finds before the answer (0: repaired since); ``traced``: what the answer's trace finds."""
    monkeypatch.setattr(base, "require_root", lambda: None)
    monkeypatch.setattr(cli_breaks, "require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda lab, topo: "qz")
    monkeypatch.setattr(qz, "load", lambda name: {"scenario": scenario, "target": "n1"})
    monkeypatch.setattr(qz, "close", lambda name: events.append("quiz closed"))
    fake_state = types.SimpleNamespace(lab="qz", source="/t/qz.yaml", extra={}, repair=None,
                                       resolved=lambda: object())
    monkeypatch.setattr(state_mod, "running_lab", lambda name: fake_state)
    monkeypatch.setattr("netlab.workload.terminal.served", lambda lab, state: lab)  # no terminal pod
    monkeypatch.setattr(cli_breaks.catalogue, "resolve_target", lambda s, lab, target: target)
    monkeypatch.setattr(symptoms, "trace_check", lambda s, lab, target: symptoms.TraceCheck("a", "b", None, None, "qz-n1", "ip_forward"))
    monkeypatch.setattr(qz, "fault", lambda s, lab, target: ["ip netns exec qz-n1 sysctl -w net.ipv4.ip_forward=0"])
    monkeypatch.setattr(trace_run, "run", lambda *a, **k: events.append("traced") or types.SimpleNamespace(
        to_json=lambda repair=None: traced))
    monkeypatch.setattr(render, "render_text", lambda result: "the trace\n")
    monkeypatch.setattr(api, "load_running", lambda name: name)
    monkeypatch.setattr(api.Lab, "up_loaded", classmethod(
        lambda cls, loaded: events.append(f"repaired {loaded}") or types.SimpleNamespace(last_up=None)))
    monkeypatch.setattr(cli_breaks, "_faults_before", lambda name, reader="break": before)


def test_the_lab_is_repaired_and_the_quiz_closed_before_any_output(monkeypatch):
    events: list[str] = []
    _faked(monkeypatch, events, 1)

    def echo(*args, **kwargs):  # the reader is gone: the first write fails
        events.append("wrote")
        raise BrokenPipeError

    monkeypatch.setattr(click, "echo", echo)
    result = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    # Repaired from the lab's saved topology (load_running), not its file: a dict's lab has none, and
    # api.load(None) is the built-in lab demo.
    assert events[:4] == ["traced", "repaired qz", "quiz closed", "wrote"], (events, result.exception)


def test_the_answer_names_the_trace_that_shows_it_with_sudo(monkeypatch):
    _faked(monkeypatch, [], 1)
    result = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert f"\nthe trace that shows it: {netlab_command('trace --lab qz a b')}\n" in result.output, result.output


def test_a_lab_repaired_before_the_answer_shows_no_passing_trace_as_the_proof(monkeypatch):
    """`netlab up` between the quiz and its answer: the lab is as planned, every trace passes. The answer showed
    that passing trace as "the trace that shows it"; it says the fault is no longer there, and how to see it."""
    events: list[str] = []
    _faked(monkeypatch, events, 0)
    result = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "traced" not in events and "the trace that shows it" not in result.output, result.output
    assert result.output.startswith("right") and "the trace\n" not in result.output
    assert ("the fault is no longer there: lab qz was as planned before this answer (repaired since the quiz broke "
            f"it), so no trace shows it; to see it: {netlab_command('break --lab qz ip-forward-off --target n1')}, "
            f"then {netlab_command('trace --lab qz a b')}") in result.output, result.output
    assert events[-2:] == ["repaired qz", "quiz closed"]


def test_a_stale_entry_gone_before_the_answer_is_not_called_repaired(monkeypatch):
    """QA q26 1: the stale conntrack entry times out by itself (120 s after the flow's last packet); the answer
    called the lab "repaired since the quiz broke it" though nobody repaired it."""
    events: list[str] = []
    _faked(monkeypatch, events, 0, "conntrack-stale-entry")
    result = CliRunner().invoke(cli, ["quiz", "answer", "conntrack-stale-entry"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "repaired since" not in result.output, result.output
    assert ("was as planned before this answer (the stale entry is gone: unless someone deleted it (conntrack -D, "
            "netlab up), it timed out and the fault healed by itself, no repair: the kernel drops a UDP entry "
            "nf_conntrack_udp_timeout_stream (120 s) after its flow's last packet), so no trace shows it"
            ) in result.output, result.output


def test_a_wrong_answer_keeps_the_quiz_open_for_another_try(monkeypatch):
    """QA: a wrong answer revealed the fault and repaired the lab in one step: no second try for a class. It says
    wrong, keeps the lab broken and the quiz open (exit 1), and names how to try again or give up (--reveal)."""
    events: list[str] = []
    _faked(monkeypatch, events, 1)
    result = CliRunner().invoke(cli, ["quiz", "answer", "rp-filter-strict"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.output == ("wrong: it is not rp-filter-strict; lab qz stays broken and its quiz open: look again, "
                             f"then answer again ({netlab_command('quiz answer --lab qz SCENARIO')}), or see the "
                             f"answer and repair the lab: {netlab_command('quiz answer --lab qz --reveal')}\n"
                             ), result.output

    assert events == [] and "ip-forward-off" not in result.output  # no trace, no repair, nothing revealed


def test_reveal_gives_up_shows_the_answer_and_repairs(monkeypatch):
    events: list[str] = []
    _faked(monkeypatch, events, 1)
    result = CliRunner().invoke(cli, ["quiz", "answer", "--reveal"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.startswith("it was ip-forward-off (") and "the trace that shows it" in result.output
    assert events == ["traced", "repaired qz", "quiz closed"]
    wrong = CliRunner().invoke(cli, ["quiz", "answer", "rp-filter-strict", "--reveal"])  # judged, then revealed
    assert wrong.exit_code == 1 and wrong.output.startswith("wrong: it was ip-forward-off ("), wrong.output
    from cli_inprocess import run_cli

    neither = run_cli("quiz", "answer")
    assert neither.returncode == 2 and neither.stderr == ("netlab: name the scenario you found, or give up with "
                                                          "--reveal (the answer, then the repair)\n"), neither


def test_a_lab_repaired_in_part_by_hand_shows_no_passing_trace_as_the_proof(monkeypatch):
    """QA: the student put the fault back in part by hand (the route added again with a metric of its own): the lab
    is not as planned, but the trace delivers. The answer said "right" and showed that delivered trace as "the
    trace that shows it". It is judged by the name against the quiz's fault, says the trace no longer shows it, and
    how to see it; then repairs."""
    events: list[str] = []
    delivered = {"ok": True, "delivered": True, "lost": None, "reply_lost": None}
    _faked(monkeypatch, events, 2, traced=delivered)
    steps = ["del", "add"]  # the quiz's change, and what of it the kernel no longer holds
    todo: list[str] = ["add"]
    monkeypatch.setattr(brun, "steps_of", lambda name, lab, target: steps)
    monkeypatch.setattr(brun, "still_to_do", lambda st, state: events.append("read the kernel") or todo)
    result = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.startswith("right (") and "the trace that shows it" not in result.output, result.output
    assert "the trace\n" not in result.output, result.output
    assert (f"the trace no longer shows it: lab qz was not as planned before this answer (2 differences from its plan; "
            f"`{netlab_command('status --lab qz')}` lists them), yet {netlab_command('trace --lab qz a b')} delivers "
            "the packet and its reply: the quiz's change was undone in part since (by hand), and what is left of it is "
            "not on the packet's way; to see it: "
            f"{netlab_command('break --lab qz ip-forward-off --target n1')}, then "
            f"{netlab_command('trace --lab qz a b')}"
            ) in result.output, result.output
    assert events == ["traced", "read the kernel", "repaired qz", "quiz closed"]  # the change read before up
    todo[:] = steps  # all of it undone: the differences are others'
    whole = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert ": the quiz's change is no longer in the kernel (undone since, by hand): what differs is something " \
        "else; to see it: " in whole.output, whole.output
    todo[:] = []  # all of it there: the packet went around it
    around = CliRunner().invoke(cli, ["quiz", "answer", "ip-forward-off"])
    assert ": the quiz's change is still in the kernel, but the packet went around it (by a change made since); to " \
        "see it: " in around.output, around.output
    # lost elsewhere (another fault made by hand): not the quiz's either, and said so
    _faked(monkeypatch, [], 2, traced={**SHOWN, "lost": {**SHOWN["lost"], "netns": "qz-n2", "reason": "no route"}})
    other = CliRunner().invoke(cli, ["quiz", "answer", "--reveal"])
    assert other.output.startswith("it was ip-forward-off (") and "the trace that shows it" not in other.output
    assert "loses the packet in qz-n2 for another reason: the quiz's change is still in the kernel" in other.output, \
        other.output
    # a wrong name on such a lab is wrong, as anywhere: the quiz stays open for another try
    _faked(monkeypatch, events := [], 2, traced=delivered)
    wrong = CliRunner().invoke(cli, ["quiz", "answer", "rp-filter-strict"])
    assert wrong.exit_code == 1 and wrong.output.startswith("wrong: it is not rp-filter-strict;") and events == []


def test_help_says_what_a_wrong_answer_says(monkeypatch):
    """QA: quiz --help said a wrong answer says only "wrong"; on a lab found as planned before the answer it is
    told the answer, the lab repaired and the quiz closed (nothing is left to find). The help says both."""
    events: list[str] = []
    _faked(monkeypatch, events, 0)
    wrong = CliRunner().invoke(cli, ["quiz", "answer", "rp-filter-strict"])
    assert wrong.exit_code == 1 and wrong.output.startswith("wrong: it was ip-forward-off ("), wrong.output
    assert events == ["repaired qz", "quiz closed"]
    text = " ".join(CliRunner().invoke(cli, ["quiz", "--help"]).output.split())
    assert 'says only "wrong"' not in text, text
    assert ("A wrong one (exit 1) says it is wrong and not what the fault is: the lab stays broken and the quiz open "
            "for another try; but on a lab found as planned before the answer (repaired, or healed by itself) there "
            "is nothing left to find, so a wrong one is told the answer too, and the lab is repaired and the quiz "
            "closed.") in text, text
    answer = " ".join(CliRunner().invoke(cli, ["quiz", "answer", "--help"]).output.split())
    assert 'only "wrong"' not in answer and "(on a lab found repaired before the answer: the answer too" in answer
