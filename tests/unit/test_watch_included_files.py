"""`up --watch`'s id of its topology file covers the files it includes (QA polfix 1): an included file's edit, a
new file a glob matches and a deleted one change it, each said in the watcher's words; and the kernel's events
of a glob's folder are read for the names it matches (inotify, no root needed)."""

from __future__ import annotations

import os

from netlab.api.watch_file import changes, file_id, included_globs
from netlab.kernel.file_events import DONE, FileEvents

POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: NAME}\n"


def test_an_included_files_edit_a_new_one_and_a_deleted_one_change_the_id(tmp_path):
    (tmp_path / "pol").mkdir()
    (tmp_path / "pol" / "a.yaml").write_text(POLICY.replace("NAME", "a"))
    topo = tmp_path / "topo.yaml"
    topo.write_text("name: w\nnodes: [{name: n1}]\ninclude: [pol/*.yaml]\n")
    path, pol = str(topo), f"{tmp_path}/pol"
    first = file_id(path)
    assert first == file_id(path)
    (tmp_path / "pol" / "a.yaml").write_text(POLICY.replace("NAME", "a-edited"))
    edited = file_id(path)
    assert changes(path, first, edited) == [f"{pol}/a.yaml changed"]
    (tmp_path / "pol" / "b.yaml").write_text(POLICY.replace("NAME", "b"))
    (tmp_path / "pol" / "notes.txt").write_text("not matched")
    added = file_id(path)
    assert changes(path, edited, added) == [f"{pol}/b.yaml added"]
    (tmp_path / "pol" / "a.yaml").unlink()
    (tmp_path / "pol" / "b.yaml").unlink()
    assert changes(path, added, file_id(path)) == [f"{pol}/a.yaml removed", f"{pol}/b.yaml removed"]
    gone = file_id(path)
    topo.write_text("name: w\nnodes: [{name: n1}]\ninclude: [pol/*.yaml, other/*.yaml]\n")
    assert changes(path, gone, file_id(path)) == [f"{path} changed"]
    assert included_globs(path) == ((os.path.realpath(pol), "*.yaml"),
                                    (os.path.realpath(tmp_path / "other"), "*.yaml"))


def test_a_globs_folder_tells_the_writes_of_the_names_it_matches(tmp_path):
    (tmp_path / "pol").mkdir()
    topo = tmp_path / "topo.yaml"
    topo.write_text("name: w\n")
    events = FileEvents(str(topo), [(str(tmp_path / "pol"), "*.yaml"), (str(tmp_path / "missing"), "*.yaml")])
    try:
        (tmp_path / "pol" / ".swap.yaml").write_text("x")  # glob's * skips a leading dot: so do its events
        (tmp_path / "pol" / "notes.txt").write_text("x")
        (tmp_path / "other.yaml").write_text("x")  # the topology's folder: only the topology's own name
        assert events.read() == []
        (tmp_path / "pol" / "a.yaml").write_text("x")
        assert events.read()[-1] == DONE
        topo.write_text("name: w2\n")
        assert events.read()[-1] == DONE
    finally:
        events.close()
