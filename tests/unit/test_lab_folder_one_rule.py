"""One rule for a lab's ``logs/``, ``dns/``, ``cni/``, ``nodes/...`` that a user made theirs, for every reader and
writer: lab_folder.open_sub (the logs' clean-ups, ``netlab logs``, the DNS records) and lab_writes.open_dir (``up``'s
writes) were twins that differed on two things:

- a file (not a folder) at the folder's name: open_sub took it for no folder at all (nothing said; ``netlab logs``
  then failed on "Not a directory" and ``status`` called the DNS records missing, which ``up`` would not write),
  open_dir refused it;
- a user's file bind-mounted at the folder's name: open_sub said a mount point, open_dir "not a folder" (moving it
  away, as that says, is EBUSY: it must be unmounted).

Now both open it through lab_folder.open_folder: a symlink, then a mount point (of a folder or a file), then
anything that is not a folder, each refused in its own words. The real bind mount:
tests/integration/test_lab_folder_one_rule_live.py.
"""

from __future__ import annotations

import os

import pytest

from netlab.errors import UsageError
from netlab.realize import lab_folder, lab_writes, state_dir
from netlab.workload import containers
from test_lab_writes_user_dirs import _on_another_mount

LAB = "uor"


def _file_at(state_root, name: str) -> str:
    state_dir.lab_dir(LAB)
    path = state_root / LAB / name
    path.write_text("USER\n")
    return str(path)


def _both(name: str) -> tuple[str | None, str | None]:
    """What open_sub's and open_dir's callers are told of the lab's folder ``name``."""
    refused = lab_writes.problem(LAB, [name])
    return (lab_folder.sub_problem(state_dir.STATE_ROOT, LAB, name), None if refused is None else refused.why)


@pytest.mark.parametrize("name", ["logs", "dns", "cni"])
def test_a_file_at_a_folders_name_is_refused_by_readers_and_writers_alike(state_root, name):
    _file_at(state_root, name)
    assert _both(name) == (lab_folder.NOT_A_FOLDER, lab_folder.NOT_A_FOLDER)


@pytest.mark.parametrize("name", ["logs", "dns"])
def test_a_file_bind_mounted_at_a_folders_name_is_a_mount_point_to_readers_and_writers_alike(state_root, monkeypatch,
                                                                                           name):
    _file_at(state_root, name)
    _on_another_mount(monkeypatch, name)
    assert _both(name) == (lab_folder.ON_A_MOUNT, lab_folder.ON_A_MOUNT)


def test_a_file_at_logs_is_said_by_up_by_the_clean_ups_and_by_logs_and_kept(state_root):
    from netlab.api.exec import open_log

    logs = _file_at(state_root, "logs")
    assert containers.logs_refused(LAB) == (f"logs: {logs}: {lab_folder.NOT_A_FOLDER}; the containers' logs are not "
                                            "written there (their output goes to /dev/null)")
    assert containers.remove_logs(LAB, ["b.main.log"]) == [f"{logs}: {lab_folder.NOT_A_FOLDER}; left alone"]
    assert containers.forget_runs(LAB, "b", "main") == [
        f"pod b container main: {logs}: {lab_folder.NOT_A_FOLDER}; its logs are left alone"]
    with pytest.raises(UsageError) as err:
        open_log(containers.log_path(LAB, "b", "main"), "b", "main", LAB)
    assert str(err.value) == (f"no log for b/main: {logs}: {lab_folder.NOT_A_FOLDER}; the containers' logs are not "
                              "kept (their output goes to /dev/null)")
    assert open(logs).read() == "USER\n"


def test_a_folder_of_netlabs_is_opened_by_both_and_one_not_there_is_none(state_root):
    state_dir.lab_dir(LAB)
    os.mkdir(state_root / LAB / "logs")
    assert _both("logs") == (None, None) and _both("dns") == (None, None)
    fd, why = lab_folder.open_sub(str(state_root), LAB, "logs")
    assert why is None and fd is not None
    os.close(fd)


def test_down_leaves_a_file_at_a_folders_name_and_says_so(state_root):
    """``down`` removed a file at ``logs`` (netlab makes a folder there, never a file: someone's); it goes by the
    same rule now: left, said in one line, the lab's folder kept with it, unmarked."""
    from netlab.realize import lab_list
    from netlab.realize.state import LabState

    LabState(lab=LAB).save()
    logs = _file_at(state_root, "logs")
    assert lab_list.forget(LAB) == [f"{logs}: {lab_folder.NOT_A_FOLDER}; left alone (and the folder with it)"]
    assert open(logs).read() == "USER\n" and os.listdir(state_root / LAB) == ["logs"]
