"""``lab.impair()`` returns ``netlab impair -o json``'s fields, and ``lab.impairments()`` is ``netlab impair`` with
no option (QA q7 #2): impair returned an UpResult (no target, netns, before, after), and Python had no way to read
back what the kernel has. Both the CLI's JSON and the library's results come from the same functions
(api/impair.result, api/impair.view), so their keys and values are the same."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from cli_inprocess import run_cli

from netlab.api import ImpairResult, Impairments, Lab, impair as impair_api, to_json
from netlab.errors import UsageError
from netlab.impair.show import Shown
from netlab.realize import state

LAB = "qx7i"
SHOWN = [Shown("a:eth0", f"{LAB}-a", "eth0", "rate 10mbit loss 1%", "rate 10mbit loss 1%", "2026-01-01T00:00:00Z",
               "on the ingress of veth-x in qx7i-n1", 3),
         Shown("b:eth0", f"{LAB}-b", "eth0", "rate 20mbit", "none", None, None, None)]


@pytest.fixture
def lab_up(state_root, monkeypatch):
    monkeypatch.delenv(state.LAB_ENV, raising=False)
    state.LabState(lab=LAB, phase="up").save()
    up = SimpleNamespace(fixed=["set rate 10mbit on eth0 in qx7i-a (it had none)"], warnings=["w"], failed=[])
    monkeypatch.setattr(impair_api, "impair", lambda lab, name, iface, spec, wait=60.0: impair_api.Impaired(
        lab=lab, target=f"{name}:{iface}", netns=f"{lab}-{name}", before="none", after="rate 10mbit loss 1%",
        up=up))
    monkeypatch.setattr(impair_api, "show", lambda lab, target=None: [
        s for s in SHOWN if target in (None, s.target)])


def test_impair_returns_the_fields_of_the_clis_json(lab_up):
    done = Lab(LAB).impair("a:eth0", rate="10mbit", loss="1%")
    assert isinstance(done, ImpairResult) and done.ok
    assert (done.lab, done.target, done.netns, done.before, done.after) == (
        LAB, "a:eth0", f"{LAB}-a", "none", "rate 10mbit loss 1%")
    assert done.changes == ("set rate 10mbit on eth0 in qx7i-a (it had none)",) and done.warnings == ("w",)
    got = run_cli("impair", "--lab", LAB, "a:eth0", "--rate", "10mbit", "--loss", "1%", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == to_json(done)


@pytest.mark.parametrize("target", [None, "a:eth0"])
def test_impairments_is_impair_with_no_option(lab_up, target):
    seen = Lab(LAB).impairments(target)
    assert isinstance(seen, Impairments) and seen.lab == LAB
    assert [r.target for r in seen.impairments] == (["a:eth0", "b:eth0"] if target is None else ["a:eth0"])
    assert seen.impairments[0].dropped == 3 and seen.impairments[0].kernel == "rate 10mbit loss 1%"
    got = run_cli("impair", "--lab", LAB, *([target] if target else []), "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == to_json(seen)


def test_impair_with_nothing_to_do_names_the_view(lab_up):
    with pytest.raises(UsageError) as err:
        Lab(LAB).impair("a:eth0")
    assert str(err.value) == ("lab.impair: say what to do: rate, delay, jitter, loss, or clear "
                              "(lab.impairments('a:eth0') shows what it has)")
    with pytest.raises(UsageError, match="^lab.impairments: 'a-eth0': write the target as NAME:IFACE"):
        Lab(LAB).impairments("a-eth0")
