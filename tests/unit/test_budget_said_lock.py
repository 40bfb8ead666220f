"""up's neighbour-table warning record (probe/budget_said.record, warned.json) is written only while nobody holds
the lab, with its lock taken shared, and never makes the lab's folder: the CLI wrote it after up let the lab go, so
a ``down`` that took the lab at that instant met a file it did not expect in the folder it removes (closing61's
left item)."""

from __future__ import annotations

import os

from netlab.probe import budget_said
from netlab.realize.lab_lock import LabLock
from netlab.realize.state_dir import lab_dir

WORDS = "all-pairs traffic in lab lb1 needs up to 1640 neighbour (ARP) entries ..."


def test_a_record_is_written_only_while_nobody_holds_the_lab(state_root):
    with LabLock("lb1", "netlab up"):  # the lab up: its folder, lock file and state
        (state_root / "lb1" / "state.json").write_text("{}")
    with LabLock("lb1", "netlab down"):  # a down that took the lab as up returned: it removes the folder
        budget_said.record("lb1", WORDS)
        assert budget_said.FILE not in os.listdir(lab_dir("lb1", create=False)), "written under a down"
    budget_said.record("lb1", WORDS)  # let go: written
    assert budget_said.said("lb1") == WORDS
    with LabLock("lb1", "netlab up"):  # nor removed while another command holds it
        budget_said.record("lb1", None)
        assert budget_said.said("lb1") == WORDS
    budget_said.record("lb1", None)
    assert budget_said.said("lb1") is None


def test_a_record_makes_no_folder(state_root):
    budget_said.record("lb2", WORDS)  # the down is done: the lab's folder is gone
    assert os.listdir(state_root) == []
    os.mkdir(state_root / "lb2")  # a folder without the lab's lock file (a user's, or emptied): nothing made in it
    budget_said.record("lb2", WORDS)
    assert os.listdir(state_root / "lb2") == []
