"""The repair named for a lab brought up from a file under a name of its own (``Lab.up(FILE, name=...)``; every
pytest plugin lab has one). QA q22 1: ``lab.status(FILE).repair`` was ``Lab.up('FILE', reconfigure=True)``: that
call made a second lab, the one the file's ``name:`` names, and left the lab as it was; ``netlab status --lab NAME``
said `sudo netlab up -t FILE`, which does the same."""

from __future__ import annotations

import types

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.api import internals as api_internals, lifecycle
from netlab.cli import lab as cli_lab
from netlab.errors import netlab_command, python_words
from netlab.lab import readahead
from netlab.lab.status import StatusResult
from netlab.api import running
from netlab.realize.state import LabState, repair_up

ROUTE = "missing route: 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in q22z-d0a12e-n1"  # up puts it back
TOPOLOGY = "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n"


@pytest.fixture
def files(tmp_path):
    """The file the lab came from (name: q22z) and an edited copy of it (t2), with the same name."""
    t1, t2 = tmp_path / "t1.yaml", tmp_path / "t2.yaml"
    t1.write_text("name: q22z\n" + TOPOLOGY)
    t2.write_text("name: q22z\n" + TOPOLOGY + "  - {name: c, node: n1}\n")
    return t1, t2


def status(monkeypatch, lab_name: str, source, topology=None, reconfigure: bool = False):
    """Lab.status(topology) of lab ``lab_name`` brought up from ``source``, whose kernel misses a route."""
    state = LabState(lab=lab_name, topology={}, source=str(source))
    lab = types.SimpleNamespace(name=lab_name, _against_ahead=lambda topology: (state, None, []))
    monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(lab=lab_name, drift=[ROUTE],
                                                                                reconfigure=reconfigure))
    return api_internals.internal_status(lab, topology, api=True).repair


def test_lab_status_of_a_file_names_the_lab_when_the_files_name_is_anothers(monkeypatch, files):
    t1, t2 = files
    assert status(monkeypatch, "q22z4937", t1, str(t2)) == f"Lab.up({str(t2)!r}, name='q22z4937', reconfigure=True)"
    assert status(monkeypatch, "q22z4937", t1, str(t1)) == f"Lab.up({str(t1)!r}, name='q22z4937')"
    # the lab the file names: as before, no name to add
    assert status(monkeypatch, "q22z", t1, str(t2)) == f"Lab.up({str(t2)!r}, reconfigure=True)"
    assert status(monkeypatch, "q22z", t1, str(t1)) == f"Lab.up({str(t1)!r})"


def test_a_drift_only_reconfigure_repairs_names_the_lab_too(monkeypatch, files):
    t1, _ = files
    got = status(monkeypatch, "q22z-d0a12e", t1, reconfigure=True)
    assert got == f"Lab.up({str(t1)!r}, name='q22z-d0a12e', reconfigure=True)"
    assert status(monkeypatch, "q22z", t1, reconfigure=True) == f"Lab.up({str(t1)!r}, reconfigure=True)"


def test_the_cli_repairs_a_renamed_lab_by_its_name_not_by_its_file(monkeypatch, files):
    t1, _ = files
    assert repair_up(LabState(lab="q22z-d0a12e", topology={}, source=str(t1))) == netlab_command("up --lab q22z-d0a12e")
    assert repair_up(LabState(lab="q22z", topology={}, source=str(t1))) == netlab_command(f"up -t {t1}")
    # a file that cannot be read now: its `up -t` would fail, `up --lab` repairs (QA qa60r 6)
    gone = str(t1.parent / "gone.yaml")
    assert repair_up(LabState(lab="q22z-d0a12e", topology={}, source=gone)) == netlab_command("up --lab q22z-d0a12e")
    # and as `netlab status --lab NAME` says it
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(readahead, "start", lambda *a: types.SimpleNamespace(close=lambda: None))
    state = LabState(lab="q22z-d0a12e", topology={}, source=str(t1))
    lab = types.SimpleNamespace(name=state.lab, _against_ahead=lambda topology: (state, None, []))
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(lab=state.lab, drift=[ROUTE]))
    got = run_cli("status", "--lab", state.lab)
    assert got.stdout.splitlines()[-1] == f"run `{netlab_command('up --lab q22z-d0a12e')}` to repair", got.stdout


def test_the_backend_move_of_a_renamed_lab_names_it(files):
    t1, _ = files
    with python_words():
        assert running.move_way(LabState(lab="q22z-d0a12e", topology={}, source=str(t1)), False) == \
            f"Lab.up({str(t1)!r}, name='q22z-d0a12e', reconfigure=True)"
        assert running.move_way(LabState(lab="q22z", topology={}, source=str(t1)), False) == \
            f"Lab.up({str(t1)!r}, reconfigure=True)"
    # the command's words too: `up -t FILE --reconfigure` would move the file's lab (QA q32 1, as status's repair)
    import os
    import shlex
    import sys

    assert running.move_way(LabState(lab="q22z-d0a12e", topology={}, source=str(t1)), False) == (
        f"sudo NETLAB_STATE_DIR={shlex.quote(os.environ['NETLAB_STATE_DIR'])} {sys.executable} -c \"from netlab import Lab; Lab.up({str(t1)!r}, name='q22z-d0a12e', "
        "reconfigure=True)\"")
    assert running.move_way(LabState(lab="q22z", topology={}, source=str(t1)), False) == \
        netlab_command(f"up -t {t1} --reconfigure")
