"""QA q39 4: `quiz` on a lab that `up --watch` keeps. The watcher repaired the fault within a second, and its line
named the quiz's secret ("pid N (netlab break ip-forward-off) changed the lab"), because the quiz held the lab's
lock as "netlab break SCENARIO". A quiz holds it as "netlab quiz", and a watched lab is refused, nothing broken
(no root: the lab is faked; the watcher's lock is a real one in a private state folder)."""

from __future__ import annotations

import json
import os
import types

from click.testing import CliRunner

from netlab import api
from netlab.breaks import quiz as qz, run as brun
from netlab.cli import base, breaks as cli_breaks, cli
from netlab.errors import LabBusy
from netlab.realize import lab_lock

LAB = "qzwatch"


def _faked(monkeypatch, broken: list[tuple[str, str | None]]) -> None:
    monkeypatch.setattr(base, "require_root", lambda: None)
    monkeypatch.setattr(cli_breaks, "require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda lab, topo: LAB)
    monkeypatch.setattr(qz, "load", lambda name: None)
    monkeypatch.setattr(qz, "record", lambda *a: None)
    monkeypatch.setattr(cli_breaks, "_faults_before", lambda name, reader="break", left_out=None: 0)
    monkeypatch.setattr("netlab.realize.state.running_lab", lambda name: types.SimpleNamespace(resolved=lambda: None))
    monkeypatch.setattr("netlab.workload.terminal.served", lambda lab, state: lab)
    monkeypatch.setattr("netlab.doctor.require_tools", lambda *a: None)
    monkeypatch.setattr(qz, "pick", lambda lab, seed: types.SimpleNamespace(name="ip-forward-off"))
    monkeypatch.setattr(brun, "break_lab", lambda name, scenario, target=None, wait=60.0, holder=None:
                        broken.append((scenario, holder)) or types.SimpleNamespace(target="n1"))


def test_a_quiz_on_a_watched_lab_is_refused_naming_the_watcher_and_how_to_stop_it(state_root, monkeypatch):
    broken: list[tuple[str, str | None]] = []
    _faked(monkeypatch, broken)
    with lab_lock.WatcherLock(LAB):
        result = CliRunner().invoke(cli, ["quiz", "--seed", "3"])
    assert isinstance(result.exception, LabBusy) and result.exception.exit_code == 3, result
    pid = os.getpid()
    assert (f"lab {LAB} is kept by pid {pid} (netlab up --watch): it would repair the quiz's fault within a second, "
            f"nothing is broken; stop the watcher first (Ctrl-C in its terminal, or sudo kill -INT {pid}), then quiz "
            "again") == str(result.exception)
    assert broken == []


def test_a_quiz_takes_the_labs_lock_under_a_name_that_names_no_scenario(state_root, monkeypatch):
    broken: list[tuple[str, str | None]] = []
    _faked(monkeypatch, broken)
    with lab_lock.WatcherLock(LAB):
        pass  # a watcher that has ended: its file is gone with it, nobody keeps the lab
    result = CliRunner().invoke(cli, ["quiz", "--seed", "3"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert broken == [("ip-forward-off", "netlab quiz")]


def test_break_lab_holds_the_lock_under_the_name_it_is_given(monkeypatch):
    """The lock's text is what the watcher's line and a waiting command say: break names its scenario, a quiz not."""
    names: list[str] = []

    class Lock:
        def __init__(self, lab, holder, wait):
            names.append(holder)

        def __enter__(self):
            return types.SimpleNamespace(waited_for=None)

        def __exit__(self, *exc):
            return False

    state = types.SimpleNamespace(resolved=lambda: types.SimpleNamespace(name=LAB), run_id="r")
    monkeypatch.setattr(brun, "running_lab", lambda name: state)
    monkeypatch.setattr(brun, "served", lambda lab, state: lab)
    monkeypatch.setattr(brun, "check", lambda name, lab, target: (types.SimpleNamespace(name=name),
                                                                   types.SimpleNamespace(name="n1")))
    monkeypatch.setattr(brun, "steps_of", lambda name, lab, tgt: [])
    monkeypatch.setattr(brun, "LabLock", Lock)
    monkeypatch.setattr(brun, "still_up", lambda *a: state)  # the state as it was: nothing came between
    monkeypatch.setattr(brun, "_todo", lambda steps, state: ([], None))
    brun.break_lab(LAB, "ip-forward-off")
    brun.break_lab(LAB, "ip-forward-off", holder=qz.LOCK_HOLDER)
    assert names == ["netlab break ip-forward-off", "netlab quiz"]


def test_a_break_on_a_watched_lab_warns_that_the_watcher_repairs_it_at_once(state_root, monkeypatch):
    """QA: `break` beside an `up --watch` of the same lab broke it without a word, and the watcher put it back
    within a second: probe and trace then showed nothing. It breaks (a break under the watcher is how one sees it
    heal) and warns as the quiz's refusal says it, with the watcher's pid and how to stop it."""
    broken: list[tuple[str, str | None]] = []
    _faked(monkeypatch, broken)
    monkeypatch.setattr(brun, "break_lab", lambda name, scenario, target=None, wait=60.0, holder=None:
                        broken.append((scenario, holder)) or brun.BreakResult(lab=LAB, scenario=scenario, target="n1"))
    pid = os.getpid()
    warning = (f"lab {LAB} is kept by pid {pid} (netlab up --watch): it will repair this fault within a second, so "
               f"probe and trace will not show it; to study the fault, stop the watcher first (Ctrl-C in its terminal, "
               f"or sudo kill -INT {pid}), then break again")
    with lab_lock.WatcherLock(LAB):
        result = CliRunner().invoke(cli, ["break", "ip-forward-off", "--lab", LAB])
        assert result.exit_code == 0, (result.output, result.exception)
        assert f"warning: {warning}\n" in result.stderr, result.stderr
        assert result.stdout.startswith(f"lab {LAB}: broke ip-forward-off on node n1"), result.stdout
        as_json = CliRunner().invoke(cli, ["break", "ip-forward-off", "--lab", LAB, "-o", "json"])
        assert warning in json.loads(as_json.stdout)["warnings"], as_json.stdout
    assert broken == [("ip-forward-off", None)] * 2
    unwatched = CliRunner().invoke(cli, ["break", "ip-forward-off", "--lab", LAB])  # the watcher gone: no word
    assert unwatched.exit_code == 0 and "kept by" not in unwatched.stderr, unwatched.stderr
