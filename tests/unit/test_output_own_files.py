"""An output file a user names never lands on a lab's own files (QA "qc", defect 7).

``capture -w /run/netlab/lab/state.json`` (a typo, a tab completion gone wrong) overwrote the lab's state with a
pcap: every command then called the lab corrupt, and only ``down --force`` brought it back. Every option that
writes where the user says (capture -w, trace --pcap and -w, graph -w, probe --junit, the API's ``pcap=``) now
refuses a path in the state directory, in /run/netns or in /etc/netns, however it is spelled, before anything is
captured or written: one line, exit 2.
"""

from __future__ import annotations

import os

import pytest
from cli_inprocess import run_cli

from netlab.errors import UsageError
from netlab.kernel import mountinfo
from netlab.realize import own_files, state_dir

COMMANDS = [
    ["capture", "--lab", "ibown", "n1:eth0", "-c", "1", "-w", "{path}"],
    ["trace", "--lab", "ibown", "a", "b", "--pcap", "{path}"],
    ["trace", "--lab", "ibown", "a", "b", "-o", "svg", "-w", "{path}"],
    ["graph", "-t", "topologies/default-2node.yaml", "-w", "{path}"],
    ["graph", "-t", "topologies/default-2node.yaml", "-o", "svg", "-w", "{path}"],
    ["probe", "--lab", "ibown", "--junit", "{path}"],
]


@pytest.fixture
def lab_state(state_root):
    """A lab's state file in this test's state directory, with content to lose."""
    folder = state_root / "ibown"
    folder.mkdir(mode=0o700)
    path = folder / "state.json"
    path.write_text('{"the": "state"}')
    return path


def refused(proc, path) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"netlab: cannot write {path}: it is inside "), lines[0]
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2] + c[-2:-1]))
def test_every_output_option_refuses_the_labs_state_file(lab_state, state_root, command):
    args = [a.format(path=lab_state) for a in command]
    line = refused(run_cli(*args), lab_state)
    assert f"{state_root}, netlab's state directory" in line
    assert lab_state.read_text() == '{"the": "state"}'
    assert sorted(os.listdir(lab_state.parent)) == ["state.json"]


def test_the_path_is_judged_where_it_leads(lab_state, state_root, tmp_path):
    """``..`` and a symlink to the state directory lead to the same file; a new file there is refused too."""
    (tmp_path / "out").mkdir()
    link = tmp_path / "link"
    link.symlink_to(state_root)
    spellings = [f"{tmp_path}/out/../state/ibown/state.json", f"{link}/ibown/state.json", f"{link}/ibown/new.pcap",
                 f"{state_root}/new.pcap"]
    for path in spellings:
        refused(run_cli("capture", "--lab", "ibown", "n1:eth0", "-w", path), path)
    assert lab_state.read_text() == '{"the": "state"}'
    assert sorted(os.listdir(lab_state.parent)) == ["state.json"] and sorted(os.listdir(state_root)) == ["ibown"]


def test_a_symlink_named_as_the_file_is_followed(lab_state, tmp_path):
    """A file outside that is a symlink to the state file: opening it for writing would truncate the state."""
    out = tmp_path / "out.pcap"
    out.symlink_to(lab_state)
    refused(run_cli("graph", "-t", "topologies/default-2node.yaml", "-w", str(out)), out)
    assert lab_state.read_text() == '{"the": "state"}'


@pytest.mark.parametrize("path,folder", [
    (f"{state_dir.DEFAULT_STATE_ROOT}/somelab/state.json", "netlab's state directory"),
    ("/run/netns/somelab-web1", "the folder of the network namespaces"),
    ("/etc/netns/somelab-web1/resolv.conf", "the folder of the pods' files"),
    ("/run/netns/../netns/x.pcap", "the folder of the network namespaces"),
])
def test_the_namespaces_and_pod_files_and_the_default_state_directory_are_refused(path, folder):
    """Named as strings only: nothing under these folders is opened (the state guard would fail the test)."""
    line = refused(run_cli("capture", "--lab", "ibown", "n1:eth0", "-w", path), path)
    assert folder in line


def test_other_paths_pass(tmp_path, state_root):
    for path in (tmp_path / "x.pcap", tmp_path / "state" / ".." / "ok.pcap", "/tmp/run/netlab/x", "/etc/netnsx"):
        assert own_files.own_folder(str(path)) is None, path
    assert own_files.own_folder(str(state_root)) is not None  # the folder itself (a directory: refused anyway)


def test_the_api_refuses_a_pcap_there_before_the_lab_is_read(lab_state):
    from netlab.api import Lab

    with pytest.raises(UsageError) as raised:
        Lab("ibown").trace("a", "b", pcap=lab_state)
    assert str(raised.value).startswith(f"lab.trace: cannot write {lab_state}: it is inside ")
    assert lab_state.read_text() == '{"the": "state"}'


def test_a_bind_mount_of_a_folder_inside_the_state_directory_is_seen_in_the_mounts_table(
        lab_state, state_root, tmp_path, monkeypatch):
    """``mount --bind STATE/ibown /tmp/my view`` shows the lab's folder under a name no path string or inode above
    it gives away; the mounts' table (octal escapes and all) does. The last mount on a point is the one seen."""
    view, other = tmp_path / "my view", tmp_path / "other"
    table = tmp_path / "mountinfo"
    table.write_text(f"1 0 0:99 / / rw - ext4 /dev/x rw\n"
                     f"2 1 0:99 {state_root}/ibown {str(view).replace(' ', chr(92) + '040')} rw - ext4 /dev/x rw\n"
                     f"3 1 0:99 {state_root} {other} rw - ext4 /dev/x rw\n"
                     f"4 3 0:98 / {other} rw - tmpfs tmpfs rw\n")
    monkeypatch.setattr(mountinfo, "MOUNTINFO", str(table))
    for path in (view / "state.json", view / "new.pcap", view):
        assert own_files.own_folder(str(path)) == (str(state_root), "netlab's state directory"), path
    assert own_files.own_folder(str(other / "ibown" / "state.json")) is None  # a tmpfs mounted over that view
    assert own_files.own_folder(str(tmp_path / "my" / "x")) is None
    monkeypatch.setattr(mountinfo, "MOUNTINFO", str(tmp_path / "none"))  # no table: judged as before
    assert own_files.own_folder(str(view / "state.json")) is None


def test_another_state_folder_this_machine_shows_and_the_turns_lock_are_refused(state_root, tmp_path, monkeypatch):
    """A lab up with another NETLAB_STATE_DIR (`netlab list` names its folder) keeps its state there, and the
    machine-wide lock of the probes' turns says who holds the turn: neither is overwritten (QA q47 2)."""
    from netlab.probe import turns
    from netlab.realize import tags

    other = tmp_path / "other-state"
    (other / "ibelse").mkdir(parents=True, mode=0o700)
    theirs = other / "ibelse" / "state.json"
    theirs.write_text('{"their": "state"}')
    lock = tmp_path / "turns.lock"
    lock.write_text("pid 1 (netlab probe)\n")
    assert getattr(own_files, "TURN_LOCK", None) == turns.LOCK_PATH  # the path the probes lock
    monkeypatch.setattr(tags, "pin_folders", lambda: [str(other)])  # its pins' tmpfs: <other>/ibelse/uts
    monkeypatch.setattr(own_files, "TURN_LOCK", str(lock), raising=False)
    line = refused(run_cli("graph", "-t", "topologies/default-2node.yaml", "-w", str(theirs)), theirs)
    assert f"it is inside {other}, netlab's state directory" in line
    proc = run_cli("probe", "--lab", "ibown", "--junit", str(lock))
    assert lock.read_text() == "pid 1 (netlab probe)\n" and theirs.read_text() == '{"their": "state"}'
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"netlab: cannot write {lock}: it is {lock}, the machine-wide lock of the probes' turns, and would overwrite "
        "what keeps the labs running; write it somewhere else"], proc.stderr
