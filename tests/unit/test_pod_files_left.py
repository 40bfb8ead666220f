"""A lab whose state folder and namespaces are both gone (/run emptied by a reboot that kept /etc, or deleted by
hand) leaves its pods' files under /etc/netns/<lab>-<pod>/, whose first line says they are the lab's. `down` said
"not up; nothing to do" and `down --force` found nothing to name the lab by, so the folders stayed for good. Now
`down` says they are left (exit 3, nothing changed), `down --force` takes exactly those, and `list` shows the lab
as lost. No root: /etc/netns is a temporary folder here (the real thing: tests/integration/test_state_lost.py).
"""

from __future__ import annotations

import json
import os

import pytest

from netlab.api import lifecycle
from netlab.api import running
from netlab.api.running import labs
from netlab.errors import UsageError, netlab_command
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown
from netlab.model.naming import pod_file_marker
from netlab.realize import state_dir, tags
from netlab.realize.state import LabState, PodFilesLeft, StateLost, lost_state
from netlab.services import lifecycle as services, netns_files, pod_files_gone
from cli_inprocess import run_cli

LAB = "ab"


@pytest.fixture
def etc(tmp_path, monkeypatch, state_root):
    """/etc/netns in a temporary folder, no namespace on the machine, and a state directory of the test's."""
    path = tmp_path / "etc-netns"
    path.mkdir()
    monkeypatch.setattr(tags, "ETC_NETNS", str(path))
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(path))
    monkeypatch.setattr(tags.nsmod, "list_netns", lambda: [])
    return path


def pod(etc, name: str, **files: str) -> None:
    """Folder /etc/netns/<name> holding ``files`` (resolv=..., hosts=...) with the given text."""
    (etc / name).mkdir()
    for kind, text in files.items():
        (etc / name / tags.POD_FILES[kind]).write_text(text)


def mine(lab: str = LAB) -> str:
    return f"{pod_file_marker(lab)} pod's file\n"


def tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in dirs + files)


def test_the_files_of_exactly_this_lab_are_found(etc, tmp_path):
    pod(etc, "ab-a", resolv=mine(), hosts=mine())
    pod(etc, "ab-b", hosts=mine())
    pod(etc, "ab-x-web", resolv=mine("ab-x"), hosts=mine("ab-x"))  # lab ab-x's pod web: the name is ab's too
    pod(etc, "ab-c", hosts=mine("abc"))  # lab abc's line, begun by "# netlab ab"
    pod(etc, "abc-a", hosts=mine())  # ab's line, in a folder that is no namespace of ab's: never looked at
    pod(etc, "ab-d", hosts="# the user's own hosts file\n" + mine())  # the line, not first
    pod(etc, "ab-e", hosts="")  # empty: a create cut short, or someone's
    pod(etc, "ab-f", hosts=mine()[:8])  # "# netlab": cut before the lab's name
    pod(etc, "ab-g", hosts=mine().upper())
    assert tags.pod_files(LAB) == {"resolv": ["ab-a"], "hosts": ["ab-a", "ab-b"]}
    assert tags.pod_files("ab-x") == {"resolv": ["ab-x-web"], "hosts": ["ab-x-web"]}
    assert tags.pod_files("abc") == {"resolv": [], "hosts": []}  # abc-a says ab, ab-c is not named abc-*
    assert tags.pod_file_labs() == ["ab", "ab-x"]
    assert tags.pod_file_labs(skip=["ab-a", "ab-b"]) == ["ab-x"]  # the folders of labs with a state: not read


def test_nothing_is_followed_through_a_symlink_nor_waited_on(etc, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hosts").write_text(mine())
    (etc / "ab-link").symlink_to(elsewhere)  # the folder a symlink to one that holds the lab's file
    pod(etc, "ab-filelink")
    (etc / "ab-filelink" / "hosts").symlink_to(elsewhere / "hosts")
    pod(etc, "ab-fifo", hosts=mine())
    os.mkfifo(etc / "ab-fifo" / "resolv.conf")  # never opened: not a regular file
    (etc / "ab-file").write_text(mine())  # a file where a folder would be
    pod(etc, "ab-dir")
    (etc / "ab-dir" / "hosts").mkdir()
    assert tags.pod_files(LAB) == {"resolv": [], "hosts": ["ab-fifo"]}
    assert tags.pod_file_labs() == [LAB]


def test_a_symlinked_etc_netns_is_not_read(etc, tmp_path, monkeypatch):
    pod(etc, "ab-a", hosts=mine())
    link = tmp_path / "etc-link"
    link.symlink_to(etc)
    monkeypatch.setattr(tags, "ETC_NETNS", str(link))
    assert tags.pod_files(LAB) == {"resolv": [], "hosts": []} and tags.pod_file_labs() == []


@pytest.mark.parametrize("name", ["../etc", "AB", "", "a" * 25, "ab/..", "-ab"])
def test_a_name_that_is_no_lab_name_never_reaches_a_path(etc, name):
    with pytest.raises(UsageError, match="lab name"):
        tags.pod_files(name)


def test_down_says_the_files_are_left_and_changes_nothing(etc, state_root):
    pod(etc, "ab-a", resolv=mine(), hosts=mine())
    pod(etc, "ab-b", hosts=mine())
    pod(etc, "ab-c", resolv=mine(), hosts=mine())
    pod(etc, "ab-d", hosts=mine())
    pod(etc, "ab-x-web", hosts=mine("ab-x"))
    before = tree(etc)
    with pytest.raises(PodFilesLeft) as info:
        teardown.down(LAB, FakeKernel(), [ModuleFeature(services)])
    assert isinstance(info.value, StateLost) and info.value.exit_code == 3  # as a lost state's
    assert str(info.value) == (
        f"lab ab is not up (no state file {state_root}/ab/state.json, no namespace tagged as its), yet its pods' "
        f"files remain in /etc/netns (ab-a, ab-b, ab-c and 1 more): take them away with "
        f"`{netlab_command('down --lab ab --force')}` (it deletes only the files whose first line says they are "
        "the lab's)")
    assert tree(etc) == before and os.listdir(state_root) == []
    assert lost_state(LAB) is None  # for status, exec ...: simply not up


def test_down_force_takes_exactly_the_labs_files(etc, state_root):
    pod(etc, "ab-a", resolv=mine(), hosts=mine())
    pod(etc, "ab-b", hosts=mine(), resolv="# the user's resolv.conf\n")  # theirs stays, and its folder
    pod(etc, "ab-x-web", resolv=mine("ab-x"), hosts=mine("ab-x"))
    pod(etc, "ab-c", hosts=mine("abc"))
    pod(etc, "ab-d")  # no file: no proof, left alone
    result = teardown.down(LAB, FakeKernel(), [ModuleFeature(services)], force=True)
    assert (result.was_up, result.removed_netns, result.problems) == (True, [], [])
    assert result.removed_pod_files == [f"{etc}/ab-a/hosts", f"{etc}/ab-a/resolv.conf", f"{etc}/ab-b/hosts"]
    assert tree(etc) == ["ab-b", "ab-b/resolv.conf", "ab-c", "ab-c/hosts", "ab-d", "ab-x-web", "ab-x-web/hosts",
                         "ab-x-web/resolv.conf"]
    assert os.listdir(state_root) == []  # the stand-in's state went with it
    assert teardown.down(LAB, FakeKernel(), [ModuleFeature(services)]).was_up is False  # nothing left to say


def test_down_force_of_a_lab_with_a_state_takes_its_earlier_runs_files_too(etc, state_root):
    """Folders of pods an earlier run had, that its state does not name (nor its namespaces): the lab's still."""
    st = LabState(lab=LAB, phase="up")
    st.extra["services"] = {"version": 2, "resolv": {}, "hosts": {"ab-a": "created"}, "dirs": {"ab-a": "created"},
                            "etc_netns": None, "udp": [], "udp_empty": [], "chains": {}}
    st.save()
    pod(etc, "ab-a", hosts=mine())
    pod(etc, "ab-old", hosts=mine())
    pod(etc, "ab-x-old", hosts=mine("ab-x"))
    result = teardown.down(LAB, FakeKernel(), [ModuleFeature(services)], force=True)
    assert tree(etc) == ["ab-x-old", "ab-x-old/hosts"]
    # the state's own files and the earlier run's (down -o json listed only these, and without --force none)
    assert result.removed_pod_files == [f"{etc}/ab-a/hosts", f"{etc}/ab-old/hosts"]


@pytest.fixture
def cli_down(etc, monkeypatch):
    """`netlab down` in this process, on the fake kernel with the pods' files feature, as root."""
    monkeypatch.setattr("netlab.cli.lab.require_root", lambda: None)
    monkeypatch.setattr(lifecycle, "live_kernel", FakeKernel)
    monkeypatch.setattr(lifecycle, "default_features", lambda: [ModuleFeature(services)])
    return lambda *args: run_cli("down", "--lab", LAB, *args)


@pytest.mark.parametrize("count, said", [(2, "ab-a, ab-b"), (5, "ab-a, ab-b, ab-c and 2 more")])
def test_down_force_says_which_pods_files_it_removed(etc, cli_down, count, said):
    """Without it the line was "(0 namespaces removed)", as if nothing had been there."""
    for name in "abcde"[:count]:
        pod(etc, f"ab-{name}", resolv=mine(), hosts=mine())
    pod(etc, "ab-x-web", hosts=mine("ab-x"))
    proc = cli_down("--force")
    assert (proc.returncode, proc.stderr) == (0, ""), proc
    assert proc.stdout == f"lab ab is down (0 namespaces removed; its pods' files in {etc} removed: {said})\n"
    assert tree(etc) == ["ab-x-web", "ab-x-web/hosts"]


def test_down_force_json_names_the_pods_files_it_removed_beside_what_it_always_had(etc, cli_down):
    pod(etc, "ab-a", hosts=mine(), resolv="# the user's resolv.conf\n")
    proc = cli_down("--force", "-o", "json")
    assert json.loads(proc.stdout) == {"lab": LAB, "was_up": True, "removed_netns": [], "skipped": [],
                                       "problems": [], "removed_pod_files": [f"{etc}/ab-a/hosts"], "stopped_processes": []}, proc
    assert tree(etc) == ["ab-a", "ab-a/resolv.conf"]
    again = cli_down("--force", "-o", "json")  # nothing left: the same keys, empty
    assert json.loads(again.stdout) == {"lab": LAB, "was_up": False, "removed_netns": [], "skipped": [],
                                        "problems": [], "removed_pod_files": [], "stopped_processes": []}, again
    assert cli_down("--force").stdout == "lab ab is not up; nothing to do\n"


def test_the_files_are_removed_through_their_folder_never_a_symlink_put_in_its_place(etc, tmp_path):
    """Between the look and the removal a folder became a symlink to another that holds a file of the lab's."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "hosts").write_text(mine())
    pod(etc, "ab-a", hosts=mine())
    rec = {"version": 2, "resolv": {}, "hosts": {"ab-a": "created"}, "dirs": {"ab-a": "created"}, "etc_netns": None}
    (etc / "ab-a" / "hosts").unlink()
    (etc / "ab-a").rmdir()
    (etc / "ab-a").symlink_to(elsewhere)
    pod_files_gone.stop(LAB, rec, set(), everything=True)
    assert (elsewhere / "hosts").read_text() == mine() and (etc / "ab-a").is_symlink()


def test_list_shows_the_lab_as_lost_with_the_way_out(etc, state_root, monkeypatch):
    monkeypatch.setattr(state_dir, "DEFAULT_STATE_ROOT", str(state_root))  # the state directory as no one set it
    LabState(lab="ab-x", netns={"ab-x-web": "created"}, phase="up").save()
    monkeypatch.setattr(running, "_any_netns", lambda st: True)  # its namespace is there, with its tag
    pod(etc, "ab-x-web", hosts=mine("ab-x"))  # the running lab's: not even read
    pod(etc, "ab-a", hosts=mine())
    pod(etc, "ab-c", hosts=mine("abc"))  # abc's line in a folder not abc's: no lab
    rows = labs()
    assert [(r.lab, r.phase) for r in rows] == [(LAB, "lost"), ("ab-x", "up")]
    assert rows[0].error is not None and rows[0].error.startswith("lab ab is not up (no state file")


def test_with_another_state_directory_list_leaves_the_pods_files_to_the_labs_of_the_default_one(etc, state_root):
    """NETLAB_STATE_DIR set (tests, a second set of labs): the labs up in /run/netlab have pods' files too."""
    pod(etc, "ab-a", hosts=mine())
    assert labs() == ()


def test_down_lists_the_pods_files_its_state_recorded_without_force(etc, state_root, cli_down):
    """`down -o json` said "removed_pod_files": [] while it removed every pod's /etc/netns folder: only --force
    filled it. Now every file removed is listed; the text line, whose namespaces' files went with them, is as
    it was."""
    def lab_with_files() -> None:
        st = LabState(lab=LAB, phase="up")
        st.extra["services"] = {"version": 2, "resolv": {"ab-a": "created"},
                                "hosts": {"ab-a": "created", "ab-b": "created"},
                                "dirs": {"ab-a": "created", "ab-b": "created"}, "etc_netns": None, "udp": [],
                                "udp_empty": [], "chains": {}}
        st.save()
        pod(etc, "ab-a", resolv=mine(), hosts=mine())
        pod(etc, "ab-b", hosts=mine())

    lab_with_files()
    proc = cli_down("-o", "json")
    assert proc.returncode == 0, proc
    assert json.loads(proc.stdout)["removed_pod_files"] == [f"{etc}/ab-a/hosts", f"{etc}/ab-a/resolv.conf",
                                                            f"{etc}/ab-b/hosts"]
    assert tree(etc) == []
    lab_with_files()
    assert cli_down().stdout == "lab ab is down (0 namespaces removed; its pods' files in " \
        f"{etc} removed: ab-a, ab-b)\n"  # no namespace of theirs was removed here: named
