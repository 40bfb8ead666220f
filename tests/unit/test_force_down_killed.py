"""`down --force` of a lab whose state file is corrupt, killed halfway (QA qa59m 1, the fake kernel).

It took the lab down with a stand-in state (the namespaces tagged as the lab's, a new random run id, an empty
topology) and saved that stand-in as the lab's state, phase deleting, without the tag it was given. Killed then,
`list` said a plain `down` finishes it; that `down` found no namespace with the stand-in's tag ("exists but is not
this lab's" for each), said "lab is down (0 namespaces removed)" and forgot the state: the lab was lost, its
namespaces left. `up --lab` of that state ended in a pydantic traceback. A stand-in is now never saved: killed, the
lab's state is what it was (corrupt), and what `list` and every command say of it is its `down --force`.
Real namespaces: tests/integration/test_force_down_killed_live.py.
"""

from __future__ import annotations

import json

import pytest
from fake_lab import machine_holds, make_lab, up

from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import state_dir, state_errors
from netlab.realize.state import load_state
from netlab.realize.state_sum import write_sum

lab = pytest.fixture(make_lab, name="lab")


class Killed(BaseException):
    """SIGKILL stood in for: no handler of netlab's runs after it."""


@pytest.fixture
def killed_at(monkeypatch):
    """``down`` killed at a named point (NETLAB_FAULT_POINT's) of its teardown."""
    def arm(point: str) -> None:
        def fault_point(name):
            if name == point:
                raise Killed(name)
        monkeypatch.setattr(teardown.testhooks, "fault_point", fault_point)
    return arm


@pytest.mark.parametrize("point", ["down-stopped", "down-deleted"])
def test_a_killed_force_down_of_a_corrupt_state_leaves_it_corrupt_and_force_finishes_it(lab, monkeypatch,
                                                                                        killed_at, point):
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    names = sorted(k.ns)
    path = state_dir.state_file(lab.name)
    with open(path, "w") as f:
        f.write("junk")
    killed_at(point)
    with pytest.raises(Killed):
        teardown.down(lab.name, k, force=True)
    with open(path) as f:
        assert f.read() == "junk"  # no stand-in saved in its place
    left = sorted(k.ns)
    assert left == (names if point == "down-stopped" else [])
    with pytest.raises(state_errors.StateCorrupt):  # a plain down changes nothing: its line names --force
        teardown.down(lab.name, k)
    assert sorted(k.ns) == left
    monkeypatch.setattr(teardown.testhooks, "fault_point", lambda name: None)
    done = teardown.down(lab.name, k, force=True)
    assert sorted(done.removed_netns) == left and k.ns == {}
    assert load_state(lab.name) is None


def saved_stand_in(lab, k) -> None:
    """The lab's state replaced by a stand-in an earlier netlab saved (an empty topology, phase deleting, a run id
    no namespace's tag names, its sum written: trusted as is)."""
    st = load_state(lab.name)
    data = json.load(open(st.path))
    data.update(topology={}, phase="deleting", run_id="64605f9fdea94a7b9a9233bc3a3e8c10", source=None)
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    with open(st.path, "wb") as f:
        f.write(raw)
    write_sum(lab.name, raw)


def test_up_of_a_saved_stand_in_is_one_line_naming_down(lab, monkeypatch):
    """Its saved topology does not validate: a corrupt state, said in one line (a pydantic traceback before)."""
    from netlab.api import lifecycle
    from cli_inprocess import run_cli

    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    saved_stand_in(lab, k)
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", lambda: k)
    monkeypatch.setattr(lifecycle, "default_features", lambda: [])
    for words in (["up", "--lab", lab.name], ["up", "--lab", lab.name, "--watch"]):
        proc = run_cli(*words)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc
        assert proc.stderr.count("\n") == 1 and "down --lab fk --force" in proc.stderr, proc.stderr
