"""The UTS pins of a lab whose state folder was renamed away are found by the run's tag, never by path alone (QA q2,
defect 4): a tmpfs ``netlab-uts`` on ``<folder>/<lab>/uts``, that folder marked netlab's, its state the run's."""

from __future__ import annotations

import json
import os

from netlab.kernel import mountinfo
from netlab.kernel.mountinfo import Mount
from netlab.realize import lab_folder, tags

RUN = "0123456789abcdef0123456789abcdef"


def moved_lab(root, lab: str, run: str = RUN, mark: bool = True) -> str:
    folder = root / lab
    folder.mkdir(parents=True, mode=0o700)
    (folder / "uts").mkdir(mode=0o700)
    if mark:
        (folder / lab_folder.MARK_FILE).write_text("")
    extra = {tags.FOLDER_RECORD: {"path": "/gone", "tag": "0badf00d"}}
    (folder / "state.json").write_text(json.dumps({"version": 1, "lab": lab, "run_id": run, "extra": extra}))
    return str(folder / "uts")


def test_only_the_pins_of_the_runs_named_by_tag_are_found(tmp_path, state_root, monkeypatch):
    mine = moved_lab(tmp_path / "moved", "lab1")
    other_run = moved_lab(tmp_path / "other", "lab1", run="f" * 32)
    unmarked = moved_lab(tmp_path / "unmarked", "lab1", mark=False)
    os.chmod(os.path.dirname(unmarked), 0o755)  # no mark, and not as netlab makes a folder: not netlab's
    other_lab = moved_lab(tmp_path / "moved", "lab2")
    table = [Mount(point=p, root="/", dev="0:1", fstype="tmpfs", source="netlab-uts", options=())
             for p in (mine, other_run, unmarked, other_lab)]
    table.append(Mount(point=mine, root="/", dev="0:2", fstype="tmpfs", source="someone", options=()))
    monkeypatch.setattr(tags, "read_mounts", lambda: table)
    monkeypatch.setattr(mountinfo, "read_mounts", lambda: table)
    tag = tags.state_tag("lab1", RUN, {tags.FOLDER_RECORD: {"tag": "0badf00d"}})
    assert tags.moved_pins("lab1", [tag]) == [mine]
    assert tags.moved_pins("lab1", []) == []
    assert tags.moved_pins("lab1", [tags.state_tag("lab1", "e" * 32, {})]) == []
    assert os.path.isdir(mine)
