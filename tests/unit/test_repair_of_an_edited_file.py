"""The repair `status` (and every line that names one) gives a lab brought up from a file that was edited since its
last `up`: `up --lab NAME`, which puts back what that up applied, and a line that says the file changed (`up -t FILE`
applies the change). It named `up -t FILE` whatever the file held now: that "repair" reconfigured the lab (a pod
deleted from the file was removed by it; QA qa59m 2). A file as the lab's last up read it still names `up -t FILE`.
No root: the lab's state is saved in the test's state directory, status's kernel answers are a stub
(test_trace_fix_is_status_repair.py)."""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.realize import state as state_mod
from netlab.realize.state import load_state, repair_up
from test_trace_fix_is_status_repair import LAB, saved_lab, status_repair


def _edit(tmp_path, was: str, now: str) -> str:
    path = tmp_path / "my svc.yaml"
    text = path.read_text()
    assert was in text
    path.write_text(text.replace(was, now, 1))
    return str(path)


def test_a_file_as_the_last_up_read_it_is_the_repair(state_root, tmp_path, monkeypatch):
    saved_lab(tmp_path, True, nft=False)
    (tmp_path / "my svc.yaml").write_text((tmp_path / "my svc.yaml").read_text() + "\n# a comment added\n")
    state = load_state(LAB)
    assert state_mod.source_changed(state) is None
    assert repair_up(state) == netlab_command(f"up -t '{tmp_path}/my svc.yaml'")
    assert status_repair(monkeypatch) == netlab_command(f"up -t '{tmp_path}/my svc.yaml'")


def test_a_file_edited_since_the_last_up_is_not_the_repair(state_root, tmp_path, monkeypatch):
    """Pod client deleted from the file: `up -t FILE` would remove it; `up --lab svc` is what puts the lab back."""
    saved_lab(tmp_path, True, nft=False)
    path = _edit(tmp_path, "  - name: client\n    node: node-1\n", "")
    state = load_state(LAB)
    assert repair_up(state) == netlab_command(f"up --lab {LAB}")
    assert state_mod.source_changed(state) == path
    assert status_repair(monkeypatch) == netlab_command(f"up --lab {LAB}")


def test_status_says_the_file_changed_since(state_root, tmp_path, monkeypatch):
    from netlab import api
    from netlab.api import lab as lab_mod
    import types

    saved_lab(tmp_path, True, nft=False)
    path = _edit(tmp_path, "node: node-2\n", "node: node-1\n")  # web-2 put on node-1: made anew by `up -t`
    differs = types.SimpleNamespace(ok=False, lab=LAB, objects=1, drift=["a rule is missing"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    got = lab_mod.internal_status(api.Lab.attach(LAB), None, None)
    assert got.repair == netlab_command(f"up --lab {LAB}")
    said = [line for line in got.warnings if "changed since" in line]
    assert said == [f"the lab's file '{path}' changed since its last up: status compares the lab with what that up "
                    f"applied, which `{netlab_command(f'up --lab {LAB}')}` puts back; "
                    f"`{netlab_command(f'up -t {chr(39)}{path}{chr(39)}')}` would apply the file as it is now"], \
        got.warnings


def test_a_file_gone_or_no_longer_valid_is_its_own_up_as_before(state_root, tmp_path):
    """Nothing to compare: the file's `up` says what it meets (test_repair_of_a_renamed_lab.py)."""
    saved_lab(tmp_path, True, nft=False)
    path = tmp_path / "my svc.yaml"
    path.write_text("name: svc\nnodes: [{name: node-1}]\npods: [{name: a, node: nowhere}]\n")
    assert repair_up(load_state(LAB)) == netlab_command(f"up -t '{path}'")
    path.unlink()
    assert repair_up(load_state(LAB)) == netlab_command(f"up -t '{path}'")
