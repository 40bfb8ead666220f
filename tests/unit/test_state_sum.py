"""A state byte for byte as netlab wrote it is taken on its sum (realize/state_sum.py); anything else is checked
whole by the schema, as before. And ``down`` of a lab without CNI plugins or impairments loads neither the
schema nor the topology's models (pydantic), which it does not need."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from netlab.realize import state, state_dir, state_schema, state_sum

LAB = "sumlab"
TOPOLOGY = {"name": LAB, "nodes": [{"name": "n1"}], "pods": [{"name": "p1", "node": "n1"}]}


@pytest.fixture
def root(state_root):
    return state_root


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The labs whose state the schema checked, in order."""
    seen: list[str] = []
    real = state_schema.check_state

    def spy(raw: bytes, lab: str):
        seen.append(lab)
        return real(raw, lab)

    monkeypatch.setattr(state_schema, "check_state", spy)
    return seen


def saved() -> state.LabState:
    st = state.LabState(lab=LAB, topology=dict(TOPOLOGY), netns={f"{LAB}-n1": "created", f"{LAB}-p1": "created"},
                        phase="up", extra={"workload": {"version": 1, "pods": {}}})
    st.save()
    return st


def test_a_state_as_netlab_wrote_it_loads_without_the_schema_and_its_topology_is_validated_when_asked(root, checks):
    st = saved()
    back = state.load_state(LAB)
    assert checks == [] and back is not None
    assert (back.run_id, back.netns, back.extra, back.phase, back.topology) == (
        st.run_id, st.netns, st.extra, st.phase, st.topology)
    assert back._model is None and back.model().name == LAB and back.model() is back.model()


@pytest.mark.parametrize("change", ["a field", "a byte", "the sum", "no sum", "a sum that is a symlink",
                                   "a long sum", "an empty sum", "a sum cut short"])
def test_anything_else_is_checked_whole(root, checks, change, tmp_path):
    saved()
    path, sum_path = root / LAB / "state.json", root / LAB / state_sum.SUM_FILE
    if change == "a field":  # still a valid state: loaded, after the check
        path.write_text(json.dumps(dict(json.loads(path.read_text()), phase="failed")))
    elif change == "a byte":
        path.write_bytes(path.read_bytes().replace(b'"phase":"up"', b'"phase":"uq"'))
    elif change == "the sum":  # its last digit, made another (it was "0" one time in 16: the sum unchanged)
        old = sum_path.read_bytes()
        sum_path.write_bytes(old[:-2] + (b"1" if old[-2:-1] == b"0" else b"0") + b"\n")
    elif change == "no sum":
        sum_path.unlink()
    elif change == "an empty sum":  # a crash after the sum's rename, before its bytes reached the disk (no fsync)
        sum_path.write_bytes(b"")
    elif change == "a sum cut short":
        sum_path.write_bytes(sum_path.read_bytes()[:20])
    elif change == "a sum that is a symlink":
        (tmp_path / "elsewhere").write_bytes(sum_path.read_bytes())
        sum_path.unlink()
        sum_path.symlink_to(tmp_path / "elsewhere")
    else:
        sum_path.write_bytes(sum_path.read_bytes().rstrip(b"\n") + b" " * state_sum.SUM_MAX + b"\n")
    if change == "a byte":
        with pytest.raises(state.StateCorrupt, match="phase"):
            state.load_state(LAB)
    else:
        back = state.load_state(LAB)
        assert back is not None and back._model is not None  # validated by the load
        assert back.phase == ("failed" if change == "a field" else "up")
    assert checks == [LAB]


def test_a_save_makes_the_state_durable_and_not_its_sum(root, monkeypatch):
    """The state is fsynced, then its directory (the rename); the sum is neither: 2 fsyncs per save, not 4. A sum
    lost in a crash is one that matches nothing (the cases above): the state is checked whole once."""
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(state_dir.os, "fsync", spy)
    saved()
    assert (root / LAB / state_sum.SUM_FILE).exists()
    assert [name.split(".tmp.")[0] for name in synced] == ["state.json", LAB]


def test_a_sum_of_another_schema_trusts_nothing(root, checks, monkeypatch):
    saved()
    monkeypatch.setattr(state_sum, "stamp", lambda: "0123456789abcdef")  # netlab upgraded, or its schema edited
    assert state.load_state(LAB) is not None and checks == [LAB]


def test_the_stamp_follows_the_schema_and_the_models_files(root, tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "topology.py").write_text("x = 1\n")
    schema = tmp_path / "state_schema.py"
    schema.write_text("y = 1\n")
    monkeypatch.setattr(state_sum, "_CHECKERS", ((str(schema),), str(model)))
    first = state_sum.stamp()
    (model / "topology.py").write_text("x = 22\n")
    second = state_sum.stamp()
    schema.write_text("y = 22\n")
    assert len({first, second, state_sum.stamp()}) == 3 and None not in {first, second}


def test_an_installation_without_the_schema_s_source_trusts_nothing_and_writes_no_sum(root, checks, monkeypatch,
                                                                                      tmp_path):
    monkeypatch.setattr(state_sum, "_CHECKERS", ((str(tmp_path / "gone.py"),), str(tmp_path)))
    assert state_sum.stamp() is None
    saved()
    assert not (root / LAB / state_sum.SUM_FILE).exists()
    assert state.load_state(LAB) is not None and checks == [LAB]


def test_a_sum_that_cannot_be_written_leaves_the_state_saved_and_checked_whole(root, checks, monkeypatch):
    saved()

    def full(path: str, data: bytes, mode: int = 0o600, **_) -> None:
        raise state_dir.StateWriteFailed(path, "No space left on device")

    monkeypatch.setattr(state_sum, "write_atomic", full)
    st = state.load_state(LAB)
    st.phase = "deleting"
    assert st.save() is True  # the state itself is on disk; its old sum matches nothing
    back = state.load_state(LAB)
    assert back.phase == "deleting" and checks == [LAB]


def test_down_of_a_lab_without_plugins_or_impairments_loads_no_schema_and_no_model(tmp_path):
    code = ("import sys\n"
            "from netlab.realize.state import LabState\n"
            f"LabState(lab={LAB!r}, topology={TOPOLOGY!r}, phase='up').save()\n"
            "from netlab.features import default_features\n"
            "from netlab.kernel.fake import FakeKernel\n"
            "from netlab.lab import teardown\n"
            f"done = teardown.down({LAB!r}, FakeKernel(), default_features())\n"
            "heavy = ('pydantic', 'netlab.model.topology', 'netlab.realize.state_schema', 'netlab.cni.lifecycle',"
            " 'netlab.impair.lifecycle')\n"
            "print(done.was_up, sorted(m for m in sys.modules if m.startswith(heavy)))\n")
    env = dict(os.environ, NETLAB_STATE_DIR=str(tmp_path / "state"))
    (tmp_path / "state").mkdir(mode=0o700)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True []"
    assert os.listdir(tmp_path / "state") == []  # forgotten whole, its sum with it


def test_status_of_a_lab_without_cni_plugins_loads_no_cni_module(tmp_path):
    """The CNI feature has nothing to say of a builtin lab (netlab.cni.lifecycle.drift returns at once):
    its drift loads nothing (20 ms of the status of any lab)."""
    code = ("import sys\n"
            "from netlab.realize.state import LabState\n"
            "from netlab.features import default_features\n"
            f"st = LabState(lab={LAB!r}, topology={TOPOLOGY!r}, phase='up')\n"
            "cni, = [f for f in default_features() if f.name == 'cni']\n"
            "print(cni.drift(st.resolved(), st), 'netlab.cni.lifecycle' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NETLAB_STATE_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] False"


def test_up_of_a_lab_without_cni_plugins_loads_no_cni_module(tmp_path):
    """Nor do the CNI feature's preflight, start and a rollback's start_again for a builtin lab (netlab.cni.lifecycle
    and its runtime: ~5 ms of every `up`): they have nothing to do there."""
    code = ("import sys\n"
            "from netlab.realize.state import LabState\n"
            "from netlab.features import default_features\n"
            f"st = LabState(lab={LAB!r}, topology={TOPOLOGY!r}, phase='up')\n"
            "lab = st.resolved()\n"
            "cni, = [f for f in default_features() if f.name == 'cni']\n"
            "print(cni.preflight(lab), cni.start_early(lab, st), cni.start(lab, st),\n"
            "      cni.start_again(lab, st, [lab.pods[0].netns], None),\n"
            "      sorted(m for m in sys.modules if m.startswith('netlab.cni.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NETLAB_STATE_DIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    empty = "StartResult(actions=[], problems=[], refused={}, failed=[], deleted_chains={}, made=[])"
    assert proc.stdout.strip() == f"None None {empty} {empty} []"


def test_the_cni_and_impairment_features_are_skipped_by_the_records_they_keep():
    from netlab.features import default_features
    from netlab.impair import lifecycle as impair
    from netlab.realize import attachments

    records = {f.name: f.records for f in default_features() if hasattr(f, "records")}
    assert records == {"cni": attachments.KEY, "impair": impair.RECORD}
