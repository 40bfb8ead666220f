"""The repair netlab prints is the `up` that converges the lab to what `status` compared the kernel with. After
`netlab impair n1:cni0 --rate 5mbit` on a lab from a file, and `tc qdisc del dev cni0 root` in n1, `status` said
the topology wants rate 5mbit, then "run `sudo netlab up -t FILE` again to repair": that up puts the file's
impairments back, so it took the 5mbit off. The lab's desired state holds `netlab impair`'s changes (the state's
``impair.runtime``): while it does, the repair is `sudo netlab up --lab NAME` (status, break, quiz, trace); a lab as
its file made it keeps `up -t FILE`, one from a dict `up --lab NAME`. No root: the state is saved in the test's state
directory, the kernel's answers are stubs (test_trace_fix_is_status_repair.py).
"""

from __future__ import annotations

import pytest

from netlab.api.impair import _runtime_entry
from netlab.errors import netlab_command

from netlab.realize.lab_lock import LabLock
from netlab.realize.state import load_state, repair_command, repair_up
from test_trace_fix_is_status_repair import LAB, saved_lab, status_repair, trace_fix

KEY = f"{LAB}-client:eth0"


def record(lab: str, key: str, entry: dict | None) -> None:
    """The lab's run-time record of ``key`` set (None: dropped) as impair sets it, holding the lab's lock."""
    with LabLock(lab, "netlab impair"):
        state = load_state(lab)
        assert state is not None
        _runtime_entry(state, key, entry)  # topologies/services.yaml's pod client, as `netlab impair client:eth0` records it


def impaired_at_run_time(spec: dict) -> None:
    """What `netlab impair` writes in the lab's state before its up (api/impair.py): ``spec`` {} is --clear."""
    record(LAB, KEY, {"spec": spec, "at": "2026-12-04T22:00:00Z"})


@pytest.mark.parametrize("from_file", [True, False], ids=["file", "dict"])
def test_a_lab_as_made_keeps_its_repair(state_root, tmp_path, monkeypatch, from_file):
    saved_lab(tmp_path, from_file, nft=False)
    want = netlab_command(f"up -t '{tmp_path}/my svc.yaml'" if from_file else f"up --lab {LAB}")
    assert status_repair(monkeypatch) == want
    assert repair_command(LAB) == want  # break's, and the other commands' that name the repair
    assert trace_fix(monkeypatch, nft=False) == want


@pytest.mark.parametrize("spec", [{"rate": "5mbit"}, {}], ids=["rate", "cleared"])
@pytest.mark.parametrize("from_file", [True, False], ids=["file", "dict"])
def test_a_lab_impaired_at_run_time_is_repaired_from_its_saved_topology(state_root, tmp_path, monkeypatch,
                                                                         from_file, spec):
    saved_lab(tmp_path, from_file, nft=False)
    impaired_at_run_time(spec)
    want = netlab_command(f"up --lab {LAB}")  # `up -t FILE` would put the file's impairments back
    assert status_repair(monkeypatch) == want
    assert repair_command(LAB) == want
    state = load_state(LAB)
    assert state is not None and repair_up(state) == want  # quiz answer's
    assert trace_fix(monkeypatch, nft=False) == want


def test_once_up_from_the_file_replaced_the_run_time_change_the_file_repairs_again(state_root, tmp_path):
    saved_lab(tmp_path, True, nft=False)
    impaired_at_run_time({"rate": "5mbit"})
    record(LAB, KEY, None)  # impair.lifecycle.start forgets it when the file says otherwise
    assert repair_command(LAB) == netlab_command(f"up -t '{tmp_path}/my svc.yaml'")
