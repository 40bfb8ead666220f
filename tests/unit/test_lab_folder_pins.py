"""A lab folder emptied by ``rm -rf`` while the lab ran is still netlab's when its ``uts`` is the lab's tmpfs of UTS
pins (QA q2, defect 2).

``rm -rf`` of the state folder deletes everything but the pins' mount point (EBUSY): the folder stays, with
``uts`` alone and no mark. Every command, ``down --force`` too, refused it as "not a lab folder of netlab's", and
nothing could take the lab down. The mounted tmpfs ``netlab-uts`` on ``<folder>/uts`` (only root mounts in this
mount namespace) proves it netlab's; anything else beside it, or no such mount, does not.
"""

from __future__ import annotations

import os

from netlab.errors import netlab_command
from netlab.kernel import mountinfo
from netlab.kernel.mountinfo import Mount
from netlab.realize import lab_folder


def emptied(tmp_path, *extra: str) -> str:
    path = tmp_path / "lab1"
    path.mkdir(mode=0o700)
    (path / "uts").mkdir(mode=0o700)
    for name in extra:
        (path / name).write_text("x")
    return str(path)


def mounted(monkeypatch, point: str, fstype: str = "tmpfs", source: str = "netlab-uts") -> None:
    table = [Mount(point=os.path.realpath(point), root="/", dev="0:41", fstype=fstype, source=source,
                   options=("rw",))]
    monkeypatch.setattr(mountinfo, "read_mounts", lambda: table)


def test_a_folder_holding_only_the_pins_tmpfs_is_netlabs(tmp_path, monkeypatch):
    path = emptied(tmp_path)
    mounted(monkeypatch, os.path.join(path, "uts"))
    assert lab_folder.not_ours(path) is None


def test_netlabs_own_names_beside_the_pins_are_no_reason_to_refuse(tmp_path, monkeypatch):
    path = emptied(tmp_path, "lock", "echo.log")
    mounted(monkeypatch, os.path.join(path, "uts"))
    assert lab_folder.not_ours(path) is None


def test_without_the_pins_tmpfs_the_folder_is_not_netlabs(tmp_path, monkeypatch):
    path = emptied(tmp_path)
    for point, fstype, source in [(os.path.join(path, "uts"), "tmpfs", "other"),
                                  (os.path.join(path, "uts"), "ext4", "netlab-uts"),
                                  (os.path.join(path, "utsx"), "tmpfs", "netlab-uts"),
                                  (path, "tmpfs", "netlab-uts")]:
        mounted(monkeypatch, point, fstype, source)
        assert lab_folder.not_ours(path) is not None, (point, fstype, source)


def test_a_foreign_file_beside_the_pins_keeps_the_folder_someone_elses(tmp_path, monkeypatch):
    path = emptied(tmp_path, "notes")
    mounted(monkeypatch, os.path.join(path, "uts"))
    assert lab_folder.not_ours(path) is not None


def test_a_folder_not_0700_is_not_netlabs(tmp_path, monkeypatch):
    path = emptied(tmp_path)
    os.chmod(path, 0o755)
    mounted(monkeypatch, os.path.join(path, "uts"))
    assert lab_folder.not_ours(path) is not None


def test_a_foreign_file_beside_the_pins_is_said_with_the_way_that_takes_the_lab_down(state_root, monkeypatch):
    """The folder stays someone else's (nothing is written or removed in it), but its refusal said "name the lab
    otherwise, or point NETLAB_STATE_DIR at a folder of netlab's", which takes nothing down: the lab's namespaces
    run on and its pins stay. What works is moving the foreign names out, then `down --force` (it never removes
    what netlab did not write): said so, the names named, for `down --force` and `list` alike."""
    import pytest

    from netlab.realize import state_dir

    path = state_root / "lab1"
    path.mkdir(mode=0o700)
    (path / "uts").mkdir(mode=0o700)
    (path / "notes").write_text("mine")
    mounted(monkeypatch, str(path / "uts"))
    with pytest.raises(state_dir.NotNetlabs) as info:  # down --force's lock, as every command's
        state_dir.lab_dir("lab1")
    said = str(info.value)
    assert "name the lab otherwise" not in said and "\n" not in said, said
    assert said == (f"{path} holds lab lab1's UTS pins (its uts is netlab's tmpfs netlab-uts: the lab's folder, "
                    "emptied while the lab ran) beside what netlab did not write there (notes), which it never "
                    f"removes: move notes out of the folder, then `{netlab_command('down --lab lab1 --force')}` takes "
                    "the lab down"), said
    assert (path / "notes").read_text() == "mine" and sorted(os.listdir(path)) == ["notes", "uts"]
