"""A state file larger than any lab's is refused as corrupt in one line, never read whole (QA q2, defect 5).

A 100 MB state.json cost `list` and `status` 1.3 GB of memory (13x its size) before they found it corrupt: on a
smaller machine the command was OOM-killed instead of saying so. A 1,000-pod lab records ~1.2 MB; a file over
16 MiB is corrupt, and no more than that limit + 1 bytes of it is read. The quiz's record is capped too.
"""

from __future__ import annotations

import os
import tracemalloc

import pytest
from test_state_newer import LAB, saved

from netlab.breaks import quiz
from netlab.errors import netlab_command
from netlab.realize import state, state_dir


def peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except Exception:  # noqa: BLE001 - the refusal is checked by the caller; the memory here
        pass
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def test_a_state_over_the_limit_is_corrupt_in_one_line_and_not_read(state_root):
    saved(state_root)
    path = state_root / LAB / "state.json"
    with open(path, "r+b") as fh:
        fh.truncate(64 << 20)  # sparse: costs the disk nothing
    with pytest.raises(state.StateCorrupt) as info:
        state.load_state(LAB)
    assert str(info.value) == (f"lab {LAB}: its state file {path} is corrupt (it is larger than 16 MiB, more than any "
                               "lab's state); take the lab down anyway with "
                               f"`{netlab_command(f'down --lab {LAB} --force')}` "
                               "(it deletes only namespaces tagged as the lab's, pods' files in /etc/netns whose "
                               "first line says they are the lab's, and the files netlab wrote in the lab's folder)")
    assert peak(lambda: state.load_state(LAB)) < 1 << 20
    assert [type(st) for st in state.iter_states()] == [state.StateCorrupt]  # `list`: corrupt


def test_a_file_that_grows_past_the_limit_after_its_size_was_read_is_read_no_further(state_root, monkeypatch):
    saved(state_root)
    path = state_root / LAB / "state.json"
    with open(path, "r+b") as fh:
        fh.truncate(state_dir.STATE_MAX + 100)
    real = os.fstat
    monkeypatch.setattr(state_dir.os, "fstat", lambda fd: os.stat_result((*real(fd)[:6], 10, *real(fd)[7:])))
    with pytest.raises(state_dir.StateTooLarge):
        state_dir.read_state_file(LAB)


def test_the_limit_holds_ten_times_a_thousand_pod_labs_state():
    assert state_dir.STATE_MAX == 16 << 20 >= 10 * 1_200_000


def test_a_quiz_record_over_its_limit_is_no_quiz_and_not_read_whole(state_root):
    saved(state_root)
    quiz.record(LAB, "pod-down", "a", 1)
    with open(quiz.path(LAB), "r+b") as fh:
        fh.truncate(64 << 20)
    assert quiz.load(LAB) is None and peak(lambda: quiz.load(LAB)) < 1 << 20
