"""The repair `status` (and every line that names one) gives a lab brought up from a file that was edited since its
last `up`: `up --lab NAME`, which puts back what that up applied, and a line that says the file changed (`up -t FILE`
applies the change). It named `up -t FILE` whatever the file held now: that "repair" reconfigured the lab (a pod
deleted from the file was removed by it; QA qa59m 2). A file as the lab's last up read it still names `up -t FILE`.
No root: the lab's state is saved in the test's state directory, status's kernel answers are a stub
(test_trace_fix_is_status_repair.py)."""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.realize import source_edit, state as state_mod
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
    assert source_edit.source_changed(state) is None
    assert repair_up(state) == netlab_command(f"up -t '{tmp_path}/my svc.yaml'")
    assert status_repair(monkeypatch) == netlab_command(f"up -t '{tmp_path}/my svc.yaml'")


def test_a_file_edited_since_the_last_up_is_not_the_repair(state_root, tmp_path, monkeypatch):
    """Pod client deleted from the file: `up -t FILE` would remove it; `up --lab svc` is what puts the lab back."""
    saved_lab(tmp_path, True, nft=False)
    path = _edit(tmp_path, "  - name: client\n    node: node-1\n", "")
    state = load_state(LAB)
    assert repair_up(state) == netlab_command(f"up --lab {LAB}")
    assert source_edit.source_changed(state) == path
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


def test_a_file_gone_or_no_longer_valid_is_not_the_repair_and_status_says_why(state_root, tmp_path, monkeypatch):
    """Its `up -t FILE` fails (no such file, or the file's own error): `up --lab svc` puts back what the last up
    applied, and status says why the file is not the repair (QA qa60r 6: it named `up -t FILE`, exit 2)."""
    from netlab import api
    from netlab.api import lab as lab_mod
    import types

    saved_lab(tmp_path, True, nft=False)
    path = tmp_path / "my svc.yaml"
    path.write_text("name: svc\nnodes: [{name: node-1}]\npods: [{name: a, node: nowhere}]\n")
    assert repair_up(load_state(LAB)) == netlab_command(f"up --lab {LAB}")
    differs = types.SimpleNamespace(ok=False, lab=LAB, objects=1, drift=["a rule is missing"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    for why in ("nowhere", "no such file"):
        got = lab_mod.internal_status(api.Lab.attach(LAB), None, None)
        assert got.repair == netlab_command(f"up --lab {LAB}")
        said = [line for line in got.warnings if "cannot be used" in line]
        assert len(said) == 1 and said[0].startswith(f"the lab's file '{path}' cannot be used (") and why in said[0]
        assert said[0].endswith(f"which `{netlab_command(f'up --lab {LAB}')}` puts back"), said
        if path.exists():
            path.unlink()
    assert repair_up(load_state(LAB)) == netlab_command(f"up --lab {LAB}")


def test_an_impaired_lab_s_file_is_not_said_to_have_changed(state_root, tmp_path, monkeypatch):
    """`netlab impair` changes the lab's desired state, not its file: status said "the lab's file F changed since its
    last up" (QA qa60r 5). The repair stays `up --lab` (`up -t FILE` would take the impairment away)."""
    from netlab import api
    from netlab.api import lab as lab_mod
    from netlab.realize.state import LabState
    import types

    saved_lab(tmp_path, True, nft=False)
    state = load_state(LAB)
    topo = dict(state.topology)
    topo["pods"] = [{**p, "impair": {"eth0": {"rate": "10mbit"}}} if i == 0 else p
                    for i, p in enumerate(topo["pods"])]
    LabState(lab=LAB, topology=topo, source=state.source, phase="up",
             extra={"impair": {"runtime": {f"{topo['pods'][0]['name']}:eth0": {"spec": {"rate": "10mbit"}}}}}).save()
    assert source_edit.source_changed(load_state(LAB)) == state.source  # the saved topology is not the file's
    differs = types.SimpleNamespace(ok=False, lab=LAB, objects=1, drift=["a rule is missing"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    got = lab_mod.internal_status(api.Lab.attach(LAB), None, None)
    assert got.repair == netlab_command(f"up --lab {LAB}")


def _reconfigure_status(monkeypatch):
    """status of the lab whose drift holds a line only `up --reconfigure` repairs (a conflist edited since its pods'
    ADD: feature.Reconfigure), the drift line as cni/edited.drift_line gives it."""
    from netlab import api
    from netlab.api import lab as lab_mod
    from netlab.cni import edited
    import types

    def status(state, kernel):  # the CNI's drift line (a conflist named by the lab: cni/edited.source)
        lab = types.SimpleNamespace(topo=types.SimpleNamespace(network=types.SimpleNamespace(
            cni=types.SimpleNamespace(conflist="net.conflist"))))
        return types.SimpleNamespace(ok=False, lab=LAB, objects=1, details=[], warnings=[], reconfigure=True,
                                     drift=[str(edited.drift_line(lab, state, ["a"]))])

    monkeypatch.setattr(lab_mod.lifecycle, "status", status)
    return lab_mod.internal_status(api.Lab.attach(LAB), None, None)


def test_a_reconfigure_drift_of_a_lab_whose_file_was_edited_names_up_lab_reconfigure(state_root, tmp_path,
                                                                                      monkeypatch):
    """The file edited since its last up AND a conflist edited (pods `up --reconfigure` re-attaches): status named
    `up -t FILE --reconfigure`, which also applies the file's edit (here: web-2 moved to node-1, made anew), in its
    repair, its drift line and every command's line; `up --lab` took no --reconfigure. Now `up --lab L
    --reconfigure`, which re-attaches the pods on the topology status compares with, and the file-changed line says
    it; Lab.status names Lab('L').repair(reconfigure=True)."""
    from netlab import api
    from netlab.api import lab as lab_mod
    from netlab.workload import reconfigure

    saved_lab(tmp_path, True, nft=False)
    path = _edit(tmp_path, "node: node-2\n", "node: node-1\n")
    want = netlab_command(f"up --lab {LAB} --reconfigure")
    got = _reconfigure_status(monkeypatch)
    assert got.repair == want, got
    assert got.drift[0].endswith(f"; `{want}` re-attaches it with the new one"), got.drift
    said = [line for line in got.warnings if "changed since" in line]
    assert said == [f"the lab's file '{path}' changed since its last up: status compares the lab with what that up "
                    f"applied, which `{want}` puts back; "
                    f"`{netlab_command(f'up -t {chr(39)}{path}{chr(39)} --reconfigure')}` would apply the file as it "
                    "is now"], got.warnings
    monkeypatch.setattr(reconfigure, "reconfigures", lambda state: True)  # every other command's line, as status's
    assert reconfigure.repair_up(load_state(LAB)) == want
    assert state_mod.reconfigure_command(LAB) == want  # trace's hairpin fix
    got = lab_mod.internal_status(api.Lab.attach(LAB), None, None, api=True)
    assert got.repair == f"Lab({LAB!r}).repair(reconfigure=True)", got


def test_a_reconfigure_drift_of_a_lab_whose_file_gives_what_it_runs_names_the_files_up_as_before(
        state_root, tmp_path, monkeypatch):
    saved_lab(tmp_path, True, nft=False)
    got = _reconfigure_status(monkeypatch)
    assert got.repair == netlab_command(f"up -t '{tmp_path}/my svc.yaml' --reconfigure"), got
    assert not [line for line in got.warnings if "changed since" in line], got.warnings


def test_a_reconfigure_repair_of_a_lab_holding_impairments_keeps_them(state_root, tmp_path):
    """`netlab impair`'s changes since the last up (the lab's desired state, not its file's): `up -t FILE
    --reconfigure` would drop them; `up --lab L --reconfigure` keeps them, as `up --lab L` does for a plain repair."""
    saved_lab(tmp_path, True, nft=False)
    state = load_state(LAB)
    assert state_mod.reconfigure_repair(state) == netlab_command(f"up -t '{tmp_path}/my svc.yaml' --reconfigure")
    state.extra["impair"] = {"runtime": {"client:eth0": {"delay": "20ms"}}}
    assert state_mod.reconfigure_repair(state) == netlab_command(f"up --lab {LAB} --reconfigure")


def test_a_file_whose_conflist_cannot_be_read_is_not_said_unusable(state_root, tmp_path, monkeypatch):
    """The lab's file as it was, its CNI conflist edited into one that cannot be read: that is the cni: drift line's
    (fix the conflist, then `up -t FILE --reconfigure`), not a file that cannot be used (the final CI of pass 59:
    status named `up --lab L --reconfigure` beside the cni: line's `up -t FILE --reconfigure`)."""
    from netlab.errors import Problem, TopologyError
    from netlab.model import load as load_mod

    saved_lab(tmp_path, True, nft=False)
    path = str(tmp_path / "my svc.yaml")

    def refused(src):
        raise TopologyError([Problem(path, 3, "network.cni.conflist", "net.conflist: is not JSON")])

    monkeypatch.setattr(load_mod, "validate_source", refused)
    assert source_edit.source_changed(load_state(LAB)) is None
    assert repair_up(load_state(LAB)) == netlab_command(f"up -t '{path}'")

    def other(src):
        raise TopologyError([Problem(path, 3, "pods[0].node", "no node 'nowhere'")])

    monkeypatch.setattr(load_mod, "validate_source", other)
    assert isinstance(source_edit.source_changed(load_state(LAB)), source_edit.Unusable)
