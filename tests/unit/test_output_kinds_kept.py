"""NETLAB_CNI_LOG's copy and the pytest plugin's dumps of a failed test replace an existing file only when it is
empty or of their kind (netlab/outkinds.py), as the CLI's -w outputs do (lf62c): a name given for them that holds
something else (a slip: NETLAB_CNI_LOG=/etc/passwd, --netlab-artifacts over a folder of other files) is refused in
one line and left as it is, never written through a symlink to such a file. Before, the copy was cut at up's first
CNI call and a dump overwrote whatever stood at its name. No root needed: files in the test's folder."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from netlab import pytest_artifacts
from netlab.cni import invoke
from netlab.errors import UsageError
from netlab.pytest_topology import artifacts_folder

OTHER = b"root:x:0:0:root:/root:/bin/bash\n"  # a file netlab did not write
CALL = {"command": "ADD", "env": {}, "network": "net", "plugin": "bridge", "pod": "a", "stdin": {}}
HEADER = {"lab": "l1", "netlab_cni_log": invoke.WATCH_HEADER, "started": 1.0}


@pytest.fixture(autouse=True)
def no_copy(monkeypatch):
    monkeypatch.delenv(invoke.LOG_VAR, raising=False)
    yield
    invoke.close_copy()


def test_the_cni_copy_refuses_a_file_that_holds_something_else(tmp_path, monkeypatch):
    other = tmp_path / "passwd"
    other.write_bytes(OTHER)
    monkeypatch.setenv(invoke.LOG_VAR, str(other))
    with pytest.raises(UsageError) as exc:
        invoke.keep_copy()
    assert str(exc.value) == (f"cannot write {other}: it is a file of {len(OTHER)} bytes that is not a copy of "
                              "netlab's CNI calls (NETLAB_CNI_LOG's JSON lines); netlab writes nothing there: name "
                              "another file in NETLAB_CNI_LOG, or remove it first")
    assert other.read_bytes() == OTHER and invoke.copy_path() is None


def test_the_cni_copy_refuses_a_symlink_to_such_a_file(tmp_path, monkeypatch):
    other = tmp_path / "passwd"
    other.write_bytes(OTHER)
    (tmp_path / "kept.jsonl").symlink_to(other)
    monkeypatch.setenv(invoke.LOG_VAR, str(tmp_path / "kept.jsonl"))
    with pytest.raises(UsageError, match="it is a symlink to .*passwd, a file of 32 bytes that is not a copy of "):
        invoke.keep_copy()
    assert other.read_bytes() == OTHER


@pytest.mark.parametrize("held", [b"", (json.dumps(CALL, sort_keys=True) + "\n").encode(),
                                  (json.dumps({**CALL, "lab": "l1"}, sort_keys=True) + "\n").encode(),
                                  (json.dumps(HEADER, sort_keys=True) + "\n").encode()],
                         ids=["empty", "a-call", "a-call-of-a-lab", "a-watchers-header"])
def test_the_cni_copy_takes_an_empty_file_or_an_earlier_copy(tmp_path, monkeypatch, held):
    copy = tmp_path / "kept.jsonl"
    copy.write_bytes(held)
    monkeypatch.setenv(invoke.LOG_VAR, str(copy))
    assert invoke.keep_copy() == str(copy) and copy.read_bytes() == held  # cut when the run's first call comes


def _failed_test(root, labs):
    """A failed test's item and report, as report_failure reads them: its labs, --netlab-artifacts ``root``."""
    options = {"netlab_artifacts": str(root), "netlab_keep": False}
    item = SimpleNamespace(stash={pytest_artifacts.LABS: labs}, nodeid="test_x.py::test_fails",
                           config=SimpleNamespace(getoption=options.get))
    return item, SimpleNamespace(when="call", sections=[], user_properties=[])


def test_a_dump_refuses_a_file_that_holds_something_else_and_the_report_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(pytest_artifacts, "snapshot", lambda lab, *a: {"status.json": {"ok": True}, "probe.json": {}})
    monkeypatch.setattr(pytest_artifacts, "not_up", lambda name: None)
    folder = tmp_path / "art" / artifacts_folder("test_x.py::test_fails") / "l1"
    folder.mkdir(parents=True)
    (folder / "status.json").write_bytes(OTHER)
    item, rep = _failed_test(tmp_path / "art", [SimpleNamespace(name="l1", _down=False, reaches=[], traces=[])])
    pytest_artifacts.report_failure(item, rep)
    assert (folder / "status.json").read_bytes() == OTHER and not (folder / "probe.json").exists()  # nothing written
    assert rep.sections == [("netlab", f"lab l1 could not be written when the test failed: cannot write "
                                       f"{folder / 'status.json'}: it is a file of {len(OTHER)} bytes that is not a "
                                       "test's dump netlab's pytest plugin writes (its JSON, error.txt); netlab writes "
                                       "nothing there: write the artifacts elsewhere (--netlab-artifacts DIR), or "
                                       "remove it first")]


def test_a_dump_replaces_an_earlier_dump(tmp_path, monkeypatch):
    files = {"status.json": {"ok": True}, "traces.json": [], "error.txt": "NetnsGone: namespace l1-a is gone\n"}
    monkeypatch.setattr(pytest_artifacts, "snapshot", lambda lab, *a: files)
    monkeypatch.setattr(pytest_artifacts, "not_up", lambda name: None)
    for _ in range(2):  # the second over the first's files
        item, rep = _failed_test(tmp_path / "art", [SimpleNamespace(name="l1", _down=False, reaches=[], traces=[])])
        pytest_artifacts.report_failure(item, rep)
        assert rep.sections[0][1].startswith("lab l1 could not be read when the test failed: "), rep.sections
    folder = tmp_path / "art" / artifacts_folder("test_x.py::test_fails") / "l1"
    assert json.loads((folder / "status.json").read_text()) == {"ok": True}


def test_dump_lab_refuses_a_symlink_to_a_file_that_holds_something_else(tmp_path, monkeypatch):
    monkeypatch.setattr(pytest_artifacts, "snapshot", lambda lab, *a: {"status.json": {"ok": True}})
    other = tmp_path / "passwd"
    other.write_bytes(OTHER)
    (tmp_path / "dump").mkdir()
    os.symlink(other, tmp_path / "dump" / "status.json")
    with pytest.raises(UsageError, match="it is a symlink to .*passwd, a file of 32 bytes that is not a test's dump"):
        pytest_artifacts.dump_lab(SimpleNamespace(name="l1", reaches=[], traces=[]), tmp_path / "dump")
    assert other.read_bytes() == OTHER
