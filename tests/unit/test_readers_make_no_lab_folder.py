"""The paths a reader (status, get, exec) asks for of a lab a ``down`` took away, or is taking: none makes the lab's
folder nor anything in it (QA: a status beside a down made the CNI lab's folder again, with an empty cni/, and the
next down said the lab's state was lost)."""

from __future__ import annotations

import os

from netlab.cni import edited, lifecycle
from netlab.cni.invoke import Call, CallLog
from netlab.workload import uts


def test_the_paths_readers_ask_for_make_nothing(state_root):
    lab = "gone1"
    assert uts.uts_path(lab, "a") == os.path.join(state_root, lab, "uts", "a")  # get pods, status, exec
    assert os.listdir(state_root) == []
    assert edited.host_local_dir(lab, "n1") == os.path.join(state_root, lab, "cni", "networks", "n1")  # status
    assert os.listdir(state_root) == []
    rt_ = lifecycle.runtime(lab, [], 1.0, make=False)
    assert rt_.cache_dir == os.path.join(state_root, lab, "cni")
    assert os.listdir(state_root) == []


def test_a_readers_call_log_makes_no_log_and_says_nothing(state_root, capsys):
    folder = state_root / "gone2" / "cni"
    folder.mkdir(parents=True)
    call = Call(pod="a", network="n", plugin="bridge", command="CHECK", env={}, stdin={}, runs_in="gone2-n1",
                exit_code=0)
    CallLog(str(folder / "calls.jsonl"), make=False).record(call)  # a log that is not there: none made
    assert os.listdir(folder) == []
    os.rmdir(folder)
    CallLog(str(folder / "calls.jsonl"), make=False).record(call)  # its folder taken: nothing said
    assert capsys.readouterr().err == "" and not folder.exists()
