"""`down` of a lab whose state cannot be written (an immutable folder or file) says what it did (QA q2, defect 3).

It took the whole lab away, then said only "cannot write state.json" (exit 3), as if nothing was done, and `list`
went on showing the lab `up`. Now every save of down's is best effort (the tags prove what is the lab's), and once
the lab is gone a state it could not forget is said so: its namespaces removed, the state kept and why, and the
way to forget it. `list` shows a lab whose namespaces are all gone as `gone`, never `up`.
"""

from __future__ import annotations

import errno

import pytest
from fake_lab import make_lab, up

from netlab.errors import down_command, netlab_command
from netlab.api.running import labs
from netlab.errors import EnvironmentNotReady
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_removal, state as state_mod, state_dir, tags
from netlab.realize.state_errors import StateNotForgotten

lab = pytest.fixture(make_lab, name="lab")


def immutable(monkeypatch) -> None:
    """Every write and removal in the lab's folder refused, as chattr +i refuses them to root."""
    def refused(path, *args, **kw):
        raise state_dir.state_dir_error(path, PermissionError(errno.EPERM, "Operation not permitted", path))

    monkeypatch.setattr(state_dir, "write_atomic", refused)
    monkeypatch.setattr(state_mod, "write_atomic", refused)
    monkeypatch.setattr(lab_removal, "remove_own", lambda root, name: [])


def test_down_that_cannot_forget_the_state_says_the_lab_is_down_and_why_the_state_stays(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    path = state_dir.state_file(lab.name)
    immutable(monkeypatch)
    with pytest.raises(StateNotForgotten) as info:
        teardown.down(lab.name, k)
    assert not k.ns  # the lab is gone
    said = str(info.value)
    assert said.startswith(f"lab {lab.name}'s namespaces are removed (5), but its state file {path} could be "
                           "neither updated nor removed (permission denied to root"), said
    assert said.endswith(f"`netlab list` shows the lab `gone` until then: once the folder may be written, "
                         f"`{down_command(lab.name)}` forgets it"), said
    assert "\n" not in said
    monkeypatch.undo()
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(path.rsplit("/", 2)[0]))
    st = state_mod.load_state(lab.name)
    assert st is not None and st.phase == "up"  # not updated: as the kernel shows it, it is not up

    monkeypatch.setattr(nsmod, "list_netns", lambda: [])
    rows = [row for row in labs() if row.lab == lab.name]
    assert [(row.phase, row.namespaces) for row in rows] == [("gone", 0)], rows
    assert "none of its namespaces is there any more" in str(rows[0].error)
    teardown.down(lab.name, k)  # the folder writable again: down forgets it
    assert state_mod.load_state(lab.name) is None


def test_a_lab_with_one_namespace_there_with_its_tag_is_up(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    name = sorted(st.netns)[0]
    spaces = {name: tags.state_tag(st.lab, st.run_id, st.extra)}
    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(spaces))
    monkeypatch.setattr(nsmod, "read_tag", lambda n: spaces.get(n))
    assert [row.phase for row in labs() if row.lab == lab.name] == ["up"]
    spaces[name] = tags.state_tag(st.lab, "0" * 32, st.extra)  # another run's namespace of that name
    assert [row.phase for row in labs() if row.lab == lab.name] == ["gone"]


def test_status_of_a_gone_lab_says_once_that_it_is_not_up_and_how_to_forget_it(lab, monkeypatch):
    """`status` of a lab `list` shows gone listed every namespace of it as missing drift (exit 1, "up repairs
    it") instead of saying what is true: none of its namespaces is there, its state file stays, and `down`
    forgets it once its folder may be written. Said once, exit 3 as the other labs whose state cannot be acted
    on (corrupt, lost, not forgotten)."""
    from netlab.lab import status as lab_status

    k = FakeKernel()
    up(lab, k)
    path = state_dir.state_file(lab.name)
    immutable(monkeypatch)
    with pytest.raises(StateNotForgotten):
        teardown.down(lab.name, k)
    st = state_mod.load_state(lab.name)
    assert st is not None and st.phase == "up" and not k.ns
    with pytest.raises(EnvironmentNotReady) as info:  # it returned a drift of every namespace missing
        lab_status.status(st, k)
    assert type(info.value).__name__ == "StateGone"
    said = str(info.value)
    assert said == (f"lab {lab.name} is not up: none of its namespaces is there any more, yet its state file "
                    f"remains ({path}); once its folder may be written, `{down_command(lab.name)}` "
                    f"forgets it (or `{netlab_command(f'up --lab {lab.name}')}` makes it again)"), said
    assert info.value.exit_code == 3
    import netlab.api

    assert type(info.value) is netlab.api.StateGone and "StateGone" in netlab.api.__all__  # as the other errors
    api = str(info.value.said_for(api=True))
    assert f"`Lab('{lab.name}').down()` forgets it" in api and f"Lab('{lab.name}').repair()" in api, api


def test_status_of_a_lab_with_one_namespace_left_is_drift_not_gone(lab):
    from netlab.lab import status as lab_status

    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    assert st is not None
    for name in sorted(st.netns)[1:]:
        del k.ns[name]
    done = lab_status.status(st, k)
    assert not done.ok and sum("missing" in line for line in done.drift) == len(st.netns) - 1, done.drift
