"""QA fx62r 3: ``Lab.trace(pcap=PATH)`` onto an existing file that is not a pcap traced first, then raised a
UsageError telling to give ``--force``, which the API has not. The file's kind is checked before anything runs
(the lab is not even read: this one does not exist), and the words name what the API offers: ``force=True``."""

from __future__ import annotations

import pytest

from netlab.errors import UsageError


def test_the_api_refuses_a_pcap_path_holding_something_else_before_the_trace_naming_force_true(tmp_path, state_root):
    from netlab.api import Lab

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(UsageError) as raised:
        Lab("fxrnone").trace("a", "b", pcap=str(notes))
    words = str(raised.value)
    assert words.startswith(f"lab.trace: cannot write {notes}: it is a file of 9 bytes that is not a pcap"), words
    assert "force=True" in words and "--force" not in words, words
    assert notes.read_text() == "my notes\n"


def test_force_true_lets_the_api_replace_it(tmp_path, state_root):
    """force=True passes the check (the run then needs the lab: this one's absence is the next thing said)."""
    from netlab.api import Lab

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(Exception) as raised:
        Lab("fxrnone").trace("a", "b", pcap=str(notes), force=True)
    assert not isinstance(raised.value, TypeError) and "cannot write" not in str(raised.value), raised.value
    assert notes.read_text() == "my notes\n"
