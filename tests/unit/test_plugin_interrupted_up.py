"""A Ctrl-C (or SIGTERM) that lands as the pytest plugin's lab has just come up, before the plugin recorded it, takes
the lab down all the same (QA: ``pytest -n 4`` interrupted as the first lab's state said ``"phase": "up"`` exited 2
and left the lab up, its namespaces, echo server and state, 3 Ctrl-C of 4; ``netlab list`` then blamed the run's
end). The plugin recorded the lab only once ``Lab.up_loaded`` had returned and its owner claim was over.

The child run's conftest brings the lab up on the fake kernel (a real state, with the owner record a fresh lab of
the plugin's gets) inside ``Lab.up_loaded`` and raises the signal as that returns: exactly the gap, no timing. The
root side, a real lab, is tests/integration/test_plugin_interrupted_up.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_plugin_interrupted_loading import TESTS  # a netlab_lab test, a netlab_factory one, one after

from netlab.realize import owner

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = '''
import os, shutil, signal
from netlab import doctor
from netlab.api import Lab
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import state_dir

def up_loaded(cls, loaded, wait=60.0):
    kernel = FakeKernel()
    lab_up.up(loaded.lab, kernel, features=(), journal=Journal(kernel))  # fresh: the claim's owner recorded
    signal.raise_signal(getattr(signal, os.environ["NETLAB_TEST_STOP"]))  # as up_loaded returns
    return cls(loaded.lab.name, owned=True)

def down(self, **kw):
    with open(os.path.join(os.environ["NETLAB_TEST_DOWNED"]), "a") as fh:
        fh.write(self.name + "\\n")
    shutil.rmtree(os.path.join(state_dir.STATE_ROOT, self.name), ignore_errors=True)
    self._down = True

Lab.up_loaded = classmethod(up_loaded)
Lab.down = down
doctor.require_for = lambda lab: None
'''

TOPOLOGY = {"name": "iu", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]}


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("fixture", ["test_lab", "test_factory"])
def test_a_stop_as_the_lab_has_come_up_takes_it_down(tmp_path, sig, fixture):
    state = tmp_path / "state"
    state.mkdir()
    downed = tmp_path / "downed"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_labs.py").write_text(TESTS.format(topology=TOPOLOGY))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # The plugin named, no autoload: pytest's autoload of every installed plugin (hypothesis's imports all of
    # hypothesis) costs ~0.8 s of CPU a run. tests/unit/test_plugin_topology.py loads the plugin by its entry point.
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), NETLAB_STATE_DIR=str(state),
               NETLAB_TEST_STOP=sig, NETLAB_TEST_DOWNED=str(downed), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                          "-q", f"test_labs.py::{fixture}", "test_labs.py::test_after"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out  # interrupted
    assert not (tmp_path / "after").exists(), out
    assert [n for n in os.listdir(state) if not n.startswith(".")] == [], out  # the lab is down
    (name,) = downed.read_text().split()
    assert name.startswith("iu-"), name


# --- the registry itself: which lab an up that raised left, and what goes down -------------------------------


class Loaded:
    def __init__(self, name: str):
        self.lab = SimpleNamespace(name=name, cni="builtin")
        self.source = None


def _registry(monkeypatch, record, raised: BaseException):
    """A registry whose up wrote a state with owner ``record`` (None: none), then raised ``raised``."""
    from netlab import doctor, pytest_labs, pytest_topology
    from netlab.api import Lab

    downed: list[str] = []
    state = SimpleNamespace(extra={} if record is None else {owner.OWNER: record})

    def up_loaded(loaded, wait=60.0):
        raise raised

    monkeypatch.setattr(pytest_topology, "load", lambda topology, name, raising=False: Loaded(name or "ru"))
    monkeypatch.setattr(pytest_labs, "unique_name", lambda base, loaded: base + "-x")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(doctor, "needs", lambda lab: ())
    monkeypatch.setattr(Lab, "up_loaded", up_loaded)
    monkeypatch.setattr(Lab, "down", lambda self, **kw: downed.append(self.name))
    monkeypatch.setattr("netlab.realize.state.load_state", lambda name: state)
    registry = pytest_labs._Registry(SimpleNamespace(getoption=lambda name: False))
    registry.machine_ok.add((frozenset(), ()))
    return registry, downed


def test_a_lab_someone_else_made_is_never_taken_down(monkeypatch):
    """Up already (a lab of another run, of the CLI): its state has no owner record of this process."""
    me = owner.identity(os.getpid())
    assert me is not None
    for record in (None, {**me, "pid": 2 ** 22 + 7}, {**me, "start": me["start"] + 1}):
        registry, downed = _registry(monkeypatch, record, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            registry.bring_up(None, "ru", 60.0)
        registry.close()
        assert registry.live == {} and downed == []


def test_a_stop_leaves_the_lab_to_the_sessions_end(monkeypatch):
    registry, downed = _registry(monkeypatch, owner.identity(os.getpid()), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        registry.bring_up(None, "ru", 60.0)
    assert list(registry.live) == ["ru-x"] and downed == []
    registry.close()
    assert downed == ["ru-x"]


def test_an_error_after_the_lab_was_made_takes_it_down_at_once(monkeypatch):
    """An up that failed and whose rollback failed too (or any error once the lab was up): what it left goes."""
    registry, downed = _registry(monkeypatch, owner.identity(os.getpid()), RuntimeError("broke"))
    with pytest.raises(RuntimeError, match="broke") as info:
        registry.bring_up(None, "ru", 60.0)
    assert downed == ["ru-x"] and registry.live == {}
    assert info.value.__notes__ == ["netlab: lab ru-x, which the up left, is taken down"]
