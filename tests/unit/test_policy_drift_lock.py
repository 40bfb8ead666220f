"""`policy table`'s drift hint reads the nodes' policy rules (status) with the lab's lock taken shared: read while
an `up` was rewriting a node's table, it could blame the table's half-applied state for a mismatch. While another
command holds the lab, the rules are not read: a note says so, and no hint names a drift."""

from __future__ import annotations

import fcntl
import os
import types

from netlab.cli.policy import policy_drift
from netlab.lab import status as lab_status
from netlab.lab.status import StatusResult
from netlab.realize import state as state_mod
from netlab.realize.lab_lock import LabLock
from netlab.realize.state_dir import LOCK_FILE, lab_dir

DRIFT = "n1: missing rule: -A NETPOL-ING-X -j RETURN"


def _reading(monkeypatch, name: str) -> list[bool]:
    """status stood in for: it records whether an `up` could take the lab's lock while it reads (False: no)."""
    could: list[bool] = []

    def status(state, kernel):
        fd = os.open(os.path.join(lab_dir(name, create=False), LOCK_FILE), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            could.append(True)
        except BlockingIOError:
            could.append(False)
        finally:
            os.close(fd)
        return StatusResult(lab=name, drift=[DRIFT, "missing route x"])

    monkeypatch.setattr(lab_status, "status", status)
    monkeypatch.setattr(state_mod, "load_state", lambda lab: types.SimpleNamespace(lab=lab))
    monkeypatch.setattr("netlab.kernel.live.LiveKernel", lambda: types.SimpleNamespace(close=lambda: None))
    return could


def test_the_drift_hint_reads_the_rules_with_the_labs_lock_shared(state_root, monkeypatch):
    open(os.path.join(lab_dir("pdl"), LOCK_FILE), "w").close()  # the lab's lock file, as an up before left it
    could = _reading(monkeypatch, "pdl")
    assert policy_drift(types.SimpleNamespace(name="pdl")) == [DRIFT]
    assert could == [False]  # an up that tried then waited for the read


def test_while_an_up_holds_the_lab_the_rules_are_not_read_and_a_note_says_why(state_root, monkeypatch):
    could = _reading(monkeypatch, "pdl")
    with LabLock("pdl", "netlab up"):
        said = policy_drift(types.SimpleNamespace(name="pdl"))
    assert could == []  # status never read the half-applied rules
    assert said == (f"the nodes' policy rules were not compared with the plan: pid {os.getpid()} (netlab up) is "
                    "changing lab pdl; run the table again once it is done"), said
