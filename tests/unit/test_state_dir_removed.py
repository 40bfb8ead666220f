"""A state folder this process checked, then removed by someone else (a `netlab down` in a shell, this process's
own Lab.down()), is made again by the next use: the per-process check remembered only its path, and a Lab.up() of
a CNI lab in the same process failed on <lab>/cni/calls.jsonl.lock (QA q17 4)."""

from __future__ import annotations

import os
import shutil

from netlab.realize import state_dir


def test_a_checked_folder_removed_since_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    monkeypatch.setattr(state_dir, "_checked", {})
    lab = state_dir.lab_dir("sdx")
    cni = state_dir.ensure_dir(os.path.join(lab, "cni"))
    shutil.rmtree(lab)  # the lab's folder taken away by another process's down
    lab_again = state_dir.lab_dir("sdx")
    assert lab_again == lab and os.path.isdir(lab)
    assert state_dir.ensure_dir(os.path.join(lab, "cni")) == cni and os.path.isdir(cni)
    assert os.stat(cni).st_mode & 0o777 == 0o700

