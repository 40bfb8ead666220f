"""A failed run and the impairments' qdiscs (no root): exit 4 says "rolled back", so the interfaces a failed
run changed get what they had, and the hint of a failed run is a command line that works."""

from __future__ import annotations

import click
import pytest
from fake_lab import IdleFeature

from netlab.cli.base import cli
from netlab.errors import ApplyFailed
from netlab.feature import StartResult
from netlab.impair import lifecycle as feature
from netlab.kernel import tc
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import state_dir


class State:
    """What the feature uses of a lab's saved state."""

    def __init__(self):
        self.extra: dict = {}

    def save(self) -> None:
        pass


def lab_with_two_rates():
    return resolve(Topology.model_validate({
        "name": "x", "nodes": [{"name": "n1", "impair": {"cni0": {"rate": "30mbit"}}}],
        "pods": [{"name": "p1", "node": "n1", "impair": {"eth0": {"rate": "20mbit"}}}]}))


HAD = {("x-n1", "cni0"): tc.Shaping(rate_bits=5_000_000), ("x-p1", "eth0"): tc.Shaping(delay_us=20_000)}


@pytest.fixture
def calls(monkeypatch):
    """tc.replace_root's calls, the kernel reading as HAD."""
    made: list[tuple] = []
    monkeypatch.setattr(feature, "_observe", lambda targets: {k: v for k, v in HAD.items() if k in targets})

    def replace_root(ns, iface, rate_bits, delay_us=None, jitter_us=None):
        made.append((ns, iface, rate_bits, delay_us, jitter_us))

    monkeypatch.setattr(feature.tc, "replace_root", replace_root)
    return made


def test_a_run_failing_after_a_change_puts_back_what_the_interface_had(calls, monkeypatch):
    """NETLAB_FAULT_POINT=impair-set: the run fails right after cni0 got 30mbit; up rolls the lab back to its
    previous topology, so cni0 must have its 5mbit again (it kept 30mbit: drift, after "rolled back")."""
    monkeypatch.setattr(feature.testhooks, "FAULT_POINT", "impair-set")
    with pytest.raises(ApplyFailed, match="injected fault at impair-set"):
        feature.start(lab_with_two_rates(), State())
    assert calls == [("x-n1", "cni0", 30_000_000, None, None), ("x-n1", "cni0", 5_000_000, None, None)]


def test_an_interrupted_run_puts_back_only_what_it_changed(calls, monkeypatch):
    real = feature.tc.replace_root

    def second_interrupted(ns, iface, *args, **kw):
        if iface == "eth0" and len(calls) == 1:
            raise KeyboardInterrupt
        real(ns, iface, *args, **kw)

    monkeypatch.setattr(feature.tc, "replace_root", second_interrupted)
    with pytest.raises(KeyboardInterrupt):
        feature.start(lab_with_two_rates(), State())
    assert calls == [("x-n1", "cni0", 30_000_000, None, None), ("x-n1", "cni0", 5_000_000, None, None)]


def test_a_refused_change_is_a_warning_and_nothing_is_put_back(calls, monkeypatch):
    def refused(ns, iface, *args, **kw):
        raise tc.TcError(22, f"set tbf (rate) as the root qdisc of {iface} in {ns}: Invalid argument")

    monkeypatch.setattr(feature.tc, "replace_root", refused)
    done = feature.start(lab_with_two_rates(), State())
    assert done.problems == ["impair: set tbf (rate) as the root qdisc of cni0 in x-n1: Invalid argument",
                             "impair: set tbf (rate) as the root qdisc of eth0 in x-p1: Invalid argument"]
    assert not done.actions and not calls
    # The same, as data for `netlab impair`, which fails on its own interface's (api/impair.py).
    assert done.refused == {"x-n1:cni0": "set tbf (rate) as the root qdisc of cni0 in x-n1: Invalid argument",
                            "x-p1:eth0": "set tbf (rate) as the root qdisc of eth0 in x-p1: Invalid argument"}
    both = StartResult()
    both += done
    assert both.refused == done.refused and both.problems == done.problems


def test_a_rate_replaced_by_a_loss_alone_is_said_removed(calls):
    """`netlab impair p1:eth0 --loss 5%` where a delay was: the qdisc goes (a loss is a rule); it was said
    "set none on eth0"."""
    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1"}], "pods": [
        {"name": "p1", "node": "n1", "impair": {"eth0": {"loss": "5%"}}}]}))
    done = feature.start(lab, State())
    assert calls == [("x-p1", "eth0", None, None, None)]
    assert done.actions == ["removed delay 20ms from eth0 in x-p1 (the impairment has no rate or delay now)"]



def test_a_qdisc_taken_off_says_whether_impair_clear_or_the_file_took_it(calls, monkeypatch):
    """`netlab impair p1:eth0 --clear` after `--rate 10mbit` said "removed ... (no longer in the topology)": it
    never was in the file; --clear took it. The run-time record (written before the up) says which it was."""
    monkeypatch.setattr(feature.tc, "delete_root", lambda ns, iface: calls.append(("del", ns, iface)))
    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1"}],
                                           "pods": [{"name": "p1", "node": "n1"}]}))
    for runtime, why in (({"x-p1:eth0": {"spec": {}, "at": "T"}}, "cleared by `netlab impair --clear`"),
                         ({}, "no longer in the topology")):  # `up -t FILE` of a file without it
        state = State()
        state.extra[feature.RECORD] = {"shaped": {"x-p1": ["eth0"]}, "runtime": runtime}
        done = feature.start(lab, state)
        assert done.actions == [f"removed delay 20ms from eth0 in x-p1 ({why})"]


def test_impair_records_the_run_time_change_before_its_up_and_puts_it_back_when_it_fails(monkeypatch):
    from contextlib import nullcontext
    from types import SimpleNamespace

    from netlab.api import impair as api_impair
    from netlab.lab.up import UpResult

    class Running(State):
        source = None
        run_id = "r1"
        lab, phase = "x", "up"

        def model(self):
            return Topology.model_validate({"name": "x", "nodes": [{"name": "n1"}], "pods": [
                {"name": "p1", "node": "n1", "impair": {"eth0": {"rate": "10mbit"}}}]})

    state = Running()
    state.extra[feature.RECORD] = {"shaped": {}, "runtime": {"x-p1:eth0": {"spec": {"rate": "10mbit"}, "at": "T"}}}
    seen = []

    def up(lab, source=None):
        seen.append(dict(feature.runtime(state)))
        if len(seen) == 2:
            raise ApplyFailed("boom")
        return UpResult(lab="x")

    monkeypatch.setattr(api_impair, "running", lambda name: state)
    monkeypatch.setattr(api_impair, "still_up", lambda *args: state)
    monkeypatch.setattr(api_impair, "LabLock", lambda *a, **k: nullcontext(SimpleNamespace(waited_for=None)))
    monkeypatch.setattr(api_impair, "load_state", lambda name: state)
    monkeypatch.setattr(api_impair.lifecycle, "up_held", up)
    api_impair.impair("x", "p1", "eth0", None)
    assert seen[0]["x-p1:eth0"]["spec"] == {}  # what the up's feature reads: cleared at run time
    with pytest.raises(ApplyFailed):
        api_impair.impair("x", "p1", "eth0", api_impair.options("5mbit", None, None, None, False))
    assert seen[1]["x-p1:eth0"]["spec"]["rate"] == "5mbit"
    assert feature.runtime(state)["x-p1:eth0"]["spec"] == {}  # the failed one's record is taken back


class Broken(IdleFeature):
    """A feature with a bug: its start raises something netlab does not know."""

    name = "broken"

    def start(self, lab, state, early=None):
        raise RuntimeError("boom")


def test_the_hint_of_a_failed_run_is_a_command_line_that_works(tmp_path, monkeypatch):
    """It said "run with --debug for details", and `netlab impair --debug ...` is "No such option"."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n1"}]}))
    kernel = FakeKernel()
    with pytest.raises(ApplyFailed) as exc:
        lab_up.up(lab, kernel, features=(Broken(),), journal=Journal(kernel))
    assert str(exc.value) == "RuntimeError: boom; rolled back (for details: netlab --debug <command> ...)"
    cli.main(["--debug", "impair", "--help"], prog_name="netlab", standalone_mode=False)  # the hint's form
    with pytest.raises(click.NoSuchOption):
        cli.main(["impair", "--debug", "x:eth0"], prog_name="netlab", standalone_mode=False)
