"""realize/state.still_up, read again once an up by name holds the lab's lock: the holder it waited for (a down)
is named for the taking down, never for the bringing up again, which another command did (QA q17 6)."""

from __future__ import annotations

import types

import pytest

from netlab.errors import UsageError
from netlab.realize import state


def test_a_lab_taken_down_and_brought_up_again_names_the_down_for_the_taking_down(monkeypatch):
    monkeypatch.setattr(state, "load_state", lambda lab: types.SimpleNamespace(run_id="run-2"))
    with pytest.raises(UsageError) as info:
        state.still_up("lx", "run-1", "this up", "pid 42 (netlab down)")
    said = str(info.value)
    assert said.startswith("lab lx was taken down by pid 42 (netlab down) and brought up again while this up "), said
    assert "nothing done" in said


def test_the_same_run_is_the_lab_read(monkeypatch):
    same = types.SimpleNamespace(run_id="run-1")
    monkeypatch.setattr(state, "load_state", lambda lab: same)
    assert state.still_up("lx", "run-1", "this up", "pid 42 (netlab down)") is same
