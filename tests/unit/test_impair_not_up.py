"""`netlab impair` and Lab.impair of a lab that is not up though its state remains (the fake kernel; QA q19 1).

Of a lab `netlab list` shows `gone` (every namespace deleted behind netlab's back), or one whose `down` was killed
halfway, impair ran the `up` that sets an impairment, which made the whole lab again (exit 0), and `impair` with no
option listed every interface "no such interface". Now it is refused as the lab's other commands refuse it:
StateGone's line (exit 3), list's "... finishes it" line, or "is being taken down", in the caller's words, and
nothing is made. Real namespaces: tests/integration/test_impair_not_up_live.py."""

from __future__ import annotations

import pytest
from fake_lab import machine_holds, make_lab, up

from netlab.errors import down_command, netlab_command
from netlab import api
from netlab.api import impair as impair_api, lifecycle
from netlab.errors import NetlabError
from netlab.kernel.fake import FakeKernel
from netlab.model.impair import Impairment
from netlab.realize import lab_list, state_dir
from netlab.realize.lab_lock import LabLock
from netlab.realize.state import load_state
from netlab.realize.state_errors import StateGone

lab = pytest.fixture(make_lab, name="lab")
LOSS = Impairment(loss="1%")


@pytest.fixture
def kernel(lab, monkeypatch):
    """Lab fk up on a fake kernel that is the machine's; an up run now would be impair making the lab again."""
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)

    def no_up(*args, **kwargs):
        raise AssertionError("impair ran an up of a lab that is not up")

    monkeypatch.setattr(lifecycle, "up", no_up)
    monkeypatch.setattr(lifecycle, "up_held", no_up)
    return k


def refused(call) -> NetlabError:
    with pytest.raises(NetlabError) as info:
        call()
    return info.value


def gone_line(words: str, again: str) -> str:
    return (f"lab fk is not up: none of its namespaces is there any more, yet its state file remains "
            f"({state_dir.state_file('fk')}); once its folder may be written, {words} forgets it (or {again} makes "
            "it again)")


def test_impair_of_a_gone_lab_says_status_s_line_and_makes_nothing(lab, kernel):
    for name in list(kernel.ns):  # `ip netns del` of every namespace: `netlab list` says gone
        kernel.delete_netns(name)
    cli = gone_line(f"`{down_command('fk')}`", f"`{netlab_command('up --lab fk')}`")
    for call in (lambda: impair_api.impair("fk", "a", "eth0", LOSS), lambda: impair_api.show("fk")):
        err = refused(call)
        assert isinstance(err, StateGone) and (str(err), err.exit_code) == (cli, 3)
    err = refused(lambda: api.Lab("fk").impair("a:eth0", loss="1%"))
    assert (str(err), err.exit_code) == (gone_line("`Lab('fk').down()`", "`Lab('fk').repair()`"), 3)
    err = refused(lambda: api.Lab("fk").impairments())
    assert str(err).endswith("`Lab('fk').down()` forgets it (or `Lab('fk').repair()` makes it again)"), err
    assert kernel.ns == {} and not load_state("fk").extra.get("impair", {}).get("runtime")  # no record written


def test_impair_of_a_lab_whose_down_was_killed_says_list_s_line(lab, kernel):
    state = load_state("fk")
    state.phase = "deleting"  # what down writes before it deletes anything; then it was killed (nobody holds it)
    state.save()
    kernel.delete_netns("fk-a")
    for call, way in ((lambda: impair_api.impair("fk", "a", "eth0", LOSS), f"{down_command('fk')}"),
                      (lambda: impair_api.show("fk"), f"{down_command('fk')}"),
                      (lambda: api.Lab("fk").impair("a:eth0", loss="1%"), "Lab('fk').down()")):
        err = refused(call)
        assert str(err).startswith("lab fk: the `netlab down` that was taking it down"), err
        assert str(err).endswith(f"ended before it finished (killed); `{way}` finishes it"), err
        assert err.exit_code == 2
    assert load_state("fk").phase == "deleting" and "fk-a" not in kernel.ns


def test_impair_during_a_down_says_it_is_being_taken_down(lab, kernel):
    state = load_state("fk")
    state.phase = "deleting"
    state.save()
    with LabLock("fk", "netlab down"):
        err = refused(lambda: impair_api.impair("fk", "a", "eth0", LOSS, wait=0))
    assert (str(err), err.exit_code) == ("lab fk is being taken down (`netlab down`): its interfaces go with it", 2)


def test_impair_that_waited_for_a_down_is_refused_and_makes_nothing(lab, kernel, monkeypatch):
    """It read the lab up, then the down took the lab away while impair waited for its lock: refused as up and
    break are (realize.state.still_up), not made again by impair's up."""
    real = impair_api.running

    def then_down(name):
        state = real(name)
        for ns in list(kernel.ns):  # the down that impair then waits for
            kernel.delete_netns(ns)
        lab_list.forget(name)
        return state

    monkeypatch.setattr(impair_api, "running", then_down)
    err = refused(lambda: impair_api.impair("fk", "a", "eth0", LOSS))
    assert str(err).startswith("lab 'fk' is not up: taken down while this impair waited for the lab"), err
    assert load_state("fk") is None


def test_impair_of_a_lab_that_is_up_runs_its_up_for_that_run(lab, kernel, monkeypatch):
    ran = []

    def record(lab, **kwargs):
        ran.append(load_state("fk").run_id)
        raise NetlabError("stop here")

    monkeypatch.setattr(lifecycle, "up_held", record)
    refused(lambda: impair_api.impair("fk", "a", "eth0", LOSS))
    assert ran == [load_state("fk").run_id]  # converged under the lock it checked the run under
    assert not load_state("fk").extra.get("impair", {}).get("runtime")  # its record put back
