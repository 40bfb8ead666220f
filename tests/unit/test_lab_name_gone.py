"""The only lab that is up is chosen among the labs `netlab list` says are up (QA qr3 3): a lab in phase ``gone``
(none of its namespaces is there any more, its state file left by a ``down`` that could not forget it) made
`status`, `get` and `probe` without --lab say "several labs are up (A, B)" (exit 2) while `list` said B is not up.
A corrupt state still counts (its commands say what is wrong with it); a lone gone lab is no lab up, as several
are (QA q17 2), yet it is the one a plain `down` forgets (QA q19 2: down's job is exactly that lab). The real
namespaces: tests/integration/test_state_folder_removed.py
::test_a_gone_lab_is_not_counted_when_a_command_picks_the_only_lab_up, and for a plain `down`,
tests/integration/test_impair_not_up_live.py::test_impair_of_a_gone_lab_is_refused_with_status_s_line_and_makes_nothing."""

from __future__ import annotations

import pytest

from netlab.errors import down_command, netlab_command
from netlab.api import running
from netlab.errors import UsageError
from netlab.kernel import netns as nsmod
from netlab.realize import lab_name, state, state_dir, tags


@pytest.fixture
def labs(state_root, monkeypatch):
    """Labs with a state each: ``up`` ones whose namespace is there with their tag, ``gone`` ones whose is not."""
    monkeypatch.delenv(state.LAB_ENV, raising=False)
    there: dict[str, str] = {}  # namespace -> its tag
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(there))
    monkeypatch.setattr(nsmod, "read_tag", lambda name: there[name])

    def make(name: str, up: bool = True) -> None:
        st = state.LabState(lab=name, phase="up", netns={f"{name}-n1": "created"})
        st.save()
        if up:
            there[f"{name}-n1"] = tags.state_tag(st.lab, st.run_id, st.extra)
    return make


def test_a_gone_lab_is_not_chosen_beside_the_one_that_is_up(labs):
    labs("qxga")
    labs("qxgb", up=False)
    assert [row.phase for row in map(running._state_row, state.iter_states())] == ["up", "gone"]  # as list says
    assert lab_name.selected_name() == "qxga" and lab_name.select_lab_name(None, None, api=True) == "qxga"
    assert lab_name.plain_up_lab("demo") == "qxga"  # plain up repairs it, as the only lab up
    labs("qxgc")
    with pytest.raises(UsageError, match=r"several labs are up \(qxga, qxgc\); pick one with --lab NAME$"):
        lab_name.selected_name()


def test_a_corrupt_lab_still_counts(labs, state_root):
    labs("qxgb", up=False)
    labs("qxga")
    labs("qxgd", up=False)
    (state_root / "qxgd" / state_dir.STATE_FILE).write_text("{not json")  # corrupt: its namespaces unknown
    with pytest.raises(UsageError, match=r"several labs are up \(qxga, qxgd\)"):
        lab_name.selected_name()


def test_when_every_lab_is_gone_no_lab_is_up_and_each_is_named_with_the_way_to_forget_it(labs):
    """Two gone labs and none up: `status` without --lab said "several labs are up (qxga, qxgb)" while `list`
    showed both gone. What is true: no lab is up, these are gone, and the way to forget each (or make it again)."""
    labs("qxga", up=False)
    labs("qxgb", up=False)
    with pytest.raises(UsageError) as info:
        lab_name.selected_name()
    said = str(info.value)
    assert "several" not in said and "\n" not in said, said
    assert said.startswith("no lab is up; 2 labs are gone (qxga, qxgb): none of their namespaces is there any more, "
                           "yet their state files remain"), said
    assert f"`{netlab_command('down --lab NAME')}` forgets it" in said, said
    with pytest.raises(UsageError, match=r"^no lab is up; 2 labs are gone .*`Lab\(NAME\)\.down\(\)` forgets it"):
        lab_name.select_lab_name(None, None, api=True)
    with pytest.raises(UsageError) as info:  # a plain up: not "several labs are up ... repair one"
        lab_name.plain_up_lab("demo")
    said = str(info.value)
    assert said.startswith("no lab is up; 2 labs are gone (qxga, qxgb)")
    assert f"`{netlab_command('up --lab NAME')}`" in said


def test_one_gone_lab_alone_is_no_lab_up_as_several_are(labs):
    """QA q17 2: with one gone lab and no lab named, plain `up` called it "the only lab up" (and status, probe, get
    pods acted on it), while list said it is not up; "no lab is up; N labs are gone" needed two."""
    labs("qxgb", up=False)
    with pytest.raises(UsageError) as info:
        lab_name.selected_name()
    assert str(info.value) == ("no lab is up; 1 lab is gone (qxgb): none of its namespaces is there any more, yet its "
                               f"state file remains; once its folder may be written, `{down_command('qxgb')}` "
                               "forgets it"), info.value
    with pytest.raises(UsageError, match=r"^no lab is up; 1 lab is gone \(qxgb\): .*`Lab\('qxgb'\)\.down\(\)` forgets"):
        lab_name.select_lab_name(None, None, api=True)
    with pytest.raises(UsageError) as info:  # a plain up: not "lab qxgb, the only lab up, converges"
        lab_name.plain_up_lab("demo")
    said = str(info.value)
    assert said.startswith("no lab is up; 1 lab is gone (qxgb)"), said
    assert f"`{netlab_command('up --lab qxgb')}`" in said, said
    assert lab_name.selected_name("qxgb") == "qxgb"  # named, it is still the one acted on (down --lab forgets it)


def test_a_lone_gone_lab_is_the_one_a_plain_down_forgets(labs, monkeypatch):
    """QA q19 2: since af01f6d a plain `down` with one gone lab said "no lab is up; 1 lab is gone (qxgb): ...
    `sudo netlab down --lab qxgb` forgets it" (exit 2), naming the one lab it means and making the user type it."""
    labs("qxgb", up=False)
    assert lab_name.down_lab_name() == "qxgb"  # `down` without --lab forgets it
    assert lab_name.down_lab_name("qxgc") == "qxgc"  # named: that one, as for every command
    monkeypatch.setenv(state.LAB_ENV, "qxgd")
    assert lab_name.down_lab_name() == "qxgd"  # $NETLAB_LAB names another: that one
    monkeypatch.delenv(state.LAB_ENV)
    labs("qxga", up=False)
    with pytest.raises(UsageError, match=r"^no lab is up; 2 labs are gone \(qxga, qxgb\)"):  # which? not guessed
        lab_name.down_lab_name()
    labs("qxgc")
    assert lab_name.down_lab_name() == "qxgc"  # one up beside gone ones: that one, as for every command


def test_with_no_lab_a_plain_down_has_nothing_to_do(labs):
    assert lab_name.down_lab_name() is None
