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


def test_a_moved_folder_without_its_state_is_the_labs_only_when_the_rest_proves_it(tmp_path, state_root,
                                                                                   monkeypatch):
    """mv of the state folder, then its state.json gone too: the tmpfs's source names no run, and down --force left
    the pins mounted, keeping the pods' UTS namespaces. Proven the lab's by what remains (the folder named <lab>,
    marked, 0700 with netlab's names alone, its pins named as the lab's pods, its state folder no live lab's of that
    name), it is found; one that cannot be proven is said in one line and left mounted."""
    def stateless(root, lab: str, pins=("a", "b"), extra=()):
        uts = moved_lab(root, lab)
        os.unlink(os.path.join(os.path.dirname(uts), "state.json"))
        for name in pins:
            open(os.path.join(uts, name), "w").close()
        for name in extra:
            open(os.path.join(os.path.dirname(uts), name), "w").close()
        return uts

    mine = stateless(tmp_path / "moved", "lab1")
    renamed = stateless(tmp_path / "moved2", "lab1.old")
    foreign = stateless(tmp_path / "moved3", "lab1", extra=("notes",))
    other = stateless(tmp_path / "moved4", "lab1", pins=("x",))  # pins of no pod of this lab's
    table = [Mount(point=p, root="/", dev="0:1", fstype="tmpfs", source="netlab-uts", options=())
             for p in (mine, renamed, foreign, other)]
    monkeypatch.setattr(tags, "read_mounts", lambda: table)
    monkeypatch.setattr(mountinfo, "read_mounts", lambda: table)
    monkeypatch.setattr(tags, "tagged_namespaces", lambda lab: {})
    # the runs' tags name the state folder the lab's folder was renamed in (a folder named otherwise is looked
    # into there alone)
    tag = tags.state_tag("lab1", RUN, {tags.FOLDER_RECORD: {"tag": tags.folder_tag(str(tmp_path / "moved2"))}})
    doubts: list[str] = []
    assert tags.moved_pins("lab1", [tag], ["lab1-a", "lab1-b", "lab1-n1"], doubts) == [mine]
    assert doubts == [
        f"{renamed}: a tmpfs netlab-uts of UTS pins named as lab lab1's pods, with no state file beside it; not "
        f"proven the lab's (its folder {os.path.dirname(renamed)} is not named lab1): left mounted",
        f"{foreign}: a tmpfs netlab-uts of UTS pins named as lab lab1's pods, with no state file beside it; not "
        "proven the lab's (its folder holds what netlab does not write (notes)): left mounted"], doubts
    assert tags.moved_pins("lab1", [], ["lab1-a", "lab1-b"]) == []  # no namespace of the lab's: nothing proven
    doubts.clear()  # a run of a tag naming no folder: a folder named otherwise is not even looked into
    assert tags.moved_pins("lab1", [tags.state_tag("lab1", RUN, {})], ["lab1-a", "lab1-b"], doubts) == [mine]
    assert len(doubts) == 1 and doubts[0].startswith(foreign), doubts
    os.chmod(os.path.dirname(mine), 0o755)
    doubts.clear()
    assert tags.moved_pins("lab1", [tag], ["lab1-a", "lab1-b"], doubts) == [] and "not mode 0700" in doubts[0]
