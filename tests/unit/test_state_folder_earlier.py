"""An unmarked folder is an earlier release's lab folder only when what it holds proves it (QA qs2, defect 6).

The rule "mode 0700, this user's, a ``lock`` or ``state.json`` in it" took any root 0700 folder of another program
for a lab of a release before netlab's mark: ``list`` showed it lost, plain ``down`` wrote its lock and netlab's
mark there (so from then on it WAS netlab's), ``down --force`` deleted its ``state.json``, ``logs/`` and ``cni/``.
Now its ``state.json`` must be a netlab state of that lab (format 1, its ``lab`` the folder's name, a run id of
netlab's), or its ``lock`` netlab's lock text with nothing beside it but names netlab writes.
"""

from __future__ import annotations

import json
import os

import pytest
from cli_inprocess import run_cli
from test_state_folder_foreign import snapshot

from netlab.errors import EnvironmentNotReady
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.realize import lab_list, lab_folder, lab_lock, state_dir, state_schema
from netlab.realize.state import LabState, iter_states

RUN = "0123456789abcdef0123456789abcdef"


def folder(root, name: str, files: dict[str, str]):
    path = root / name
    path.mkdir(mode=0o700)
    for rel, text in files.items():
        (path / rel).parent.mkdir(mode=0o700, exist_ok=True)
        (path / rel).write_text(text)
    return path


def netlab_state(lab: str, **change) -> str:
    return json.dumps({"version": 1, "lab": lab, "run_id": RUN, "topology": {}, **change})


# The report's decoys, and near misses of a netlab state or lock: each is another program's, never a lab's.
DECOYS = {
    "app": {"lock": "l\n", "logs/keep": "keep\n", "notes": "n\n", "cni/cache": "c\n"},
    "svc": {"state.json": '{"pid": 3, "ok": true}\n', "logs/app.log": "log\n"},
    "other": {"state.json": netlab_state("someone")},  # a netlab state, of another lab
    "vtrue": {"state.json": json.dumps({"version": True, "lab": "vtrue", "run_id": RUN})},
    "v2": {"state.json": netlab_state("v2", version=2)},
    "runid": {"state.json": netlab_state("runid", run_id="r1")},
    "list": {"state.json": "[1]"},
    "notjson": {"state.json": "{not json", "lock": "pid 12 (netlab up)\n"},
    "lockplus": {"lock": "pid 12 (netlab up)\n", "notes": "mine\n"},  # netlab's lock text, and a file of another's
    "lockapp": {"lock": "pid 12 (postgres)\n", "logs/x": "x\n"},
    "emptylock": {"lock": ""},
}


@pytest.fixture
def decoys(state_root):
    for name, files in DECOYS.items():
        folder(state_root, name, files)
    return state_root


def test_no_decoy_is_listed_nor_adopted(decoys):
    before = snapshot(decoys)
    assert {n: lab_folder.not_ours(str(decoys / n)) for n in DECOYS if lab_folder.not_ours(str(decoys / n)) is None} \
        == {}
    assert lab_list.known_labs() == [] and lab_list.stateless_labs() == [] and list(iter_states()) == []
    got = run_cli("list")
    assert got.returncode == 0 and "app" not in got.stdout and "svc" not in got.stdout, got
    assert snapshot(decoys) == before


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("lab", sorted(DECOYS))
def test_down_of_a_decoy_writes_and_removes_nothing(decoys, lab, force):
    before = snapshot(decoys)
    with pytest.raises(EnvironmentNotReady, match="is not a lab folder of netlab's"):
        teardown.down(lab, FakeKernel(), force=force)
    got = run_cli("down", "--lab", lab, *(["--force"] if force else []))
    assert got.returncode == 3 and got.stderr.count("\n") == 1 and "not a lab folder of netlab's" in got.stderr, got
    assert snapshot(decoys) == before  # no lock written, no mark, nothing removed


@pytest.mark.parametrize("lab", ["app", "svc", "other"])
def test_up_and_a_state_write_refuse_a_decoy_and_mark_nothing(decoys, lab):
    before = snapshot(decoys)
    with pytest.raises(EnvironmentNotReady):
        state_dir.lab_dir(lab)
    with pytest.raises(EnvironmentNotReady):
        with lab_lock.LabLock(lab, "netlab up"):
            pass
    got = run_cli("up", "--lab", lab)
    assert got.returncode == 3 and got.stderr.count("\n") == 1 and "is not a lab folder of netlab's" in got.stderr
    assert snapshot(decoys) == before


def test_an_earlier_releases_lab_is_adopted_by_its_state_and_marked_then(state_root):
    LabState(lab="old").save()  # a state of this netlab; the mark taken away: as the release before it made it
    os.unlink(state_root / "old" / lab_folder.MARK_FILE)
    state_dir.uncheck(str(state_root / "old"))  # as a new process finds it
    (state_root / "old" / "notes").write_text("x")  # the state proves it: what else is there is left by down
    assert lab_folder.not_ours(str(state_root / "old")) is None and lab_list.known_labs() == ["old"]
    state_dir.lab_dir("old")  # a write of the lab's: proven, so marked now
    assert (state_root / "old" / lab_folder.MARK_FILE).is_file()


def test_an_earlier_releases_lab_with_only_its_lock_is_adopted(state_root):
    old = folder(state_root, "old", {"lock": "pid 4242 (netlab up)\n", "echo.sock": "", "logs/a.main.log": "l"})
    assert lab_folder.not_ours(str(old)) is None and lab_list.stateless_labs() == ["old"]
    teardown.down("old", FakeKernel(), force=True)
    assert not old.exists()


def test_a_symlink_or_fifo_at_the_state_is_no_proof(state_root, tmp_path):
    (tmp_path / "real.json").write_text(netlab_state("lnk"))
    lnk = folder(state_root, "lnk", {})
    os.symlink(tmp_path / "real.json", lnk / "state.json")
    fifo = folder(state_root, "fifo", {"lock": "pid 12 (netlab up)\n"})
    os.mkfifo(fifo / "state.json")
    assert lab_folder.not_ours(str(lnk)) and lab_folder.not_ours(str(fifo))


def test_the_proofs_fields_are_the_schemas_and_the_locks_text_is_lablocks(state_root):
    assert lab_folder.RUN_ID.pattern == state_schema.RUN_ID.pattern
    assert lab_folder.STATE_VERSION == state_dir.STATE_VERSION
    path = state_root / "held"
    with lab_lock.LabLock("held", "netlab down"):  # the text a lab's lock holds, as LabLock writes it
        text = (path / "lock").read_text()
        (path / lab_folder.MARK_FILE).unlink()
        assert lab_folder.LOCK_TEXT.match(text) and lab_folder.not_ours(str(path)) is None
