"""A Ctrl-C (or SIGTERM) as the pytest plugin brings up a run's first lab, while netlab loads its topology models,
stops the run (exit 2), as any other. QA q46 1: pydantic, building a model's validator then, wrapped the
KeyboardInterrupt in a SchemaError of its own (``Error building "literal" validator: KeyboardInterrupt:``): the
test errored with a page of pydantic's internals and the remaining tests ran on (exit 1). Lab.up and
netlab.api.load raised it as the interrupt (netlab.api.words.stopped); the plugin's bring-up imported
netlab.doctor, which loads the models, outside that. Or a finalizer swallowed it, and the run went on (exit 0).

The child run's conftest makes the signal land exactly there, no timing: as pydantic builds the first validator of
a netlab model, it builds one whose making calls Python (a Literal value's repr), which raises the signal; its
handler's exception goes through pydantic-core, which wraps it as it wraps a Ctrl-C at that point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pydantic_core
import pytest
from pydantic_core import core_schema

import netlab
from netlab import api, signals
from netlab.api import running
from netlab.api.words import stopped

CONFTEST = '''
import os, signal
import pydantic_core
from pydantic._internal import _model_construction
from pydantic_core import core_schema

_build = _model_construction.create_schema_validator


os.geteuid = lambda: 65534  # not root: whatever happens, the plugin makes no lab here (it would skip the test)


def stop():
    if not os.path.exists("stopped"):  # once: pytest's report of the interrupt shows these objects again
        open("stopped", "w").close()
        signal.raise_signal(getattr(signal, os.environ["NETLAB_TEST_STOP"]))  # its handler raises here


class Stop:
    def __repr__(self):  # pydantic-core calls it as it builds a Literal's validator
        stop()
        return "not stopped"

    def __del__(self):
        if os.environ["NETLAB_TEST_WHERE"] == "finalizer":
            stop()  # Python prints "Exception ignored in ..." and goes on


def create_schema_validator(schema, schema_type, module, *args, **kwargs):
    if module.startswith("netlab.model."):  # the first of netlab's models: what the plugin's bring-up loads
        _model_construction.create_schema_validator = _build
        open("loading", "w").close()
        if os.environ["NETLAB_TEST_WHERE"] == "validator":
            pydantic_core.SchemaValidator(core_schema.literal_schema([Stop()]))
        else:
            Stop()
    return _build(schema, schema_type, module, *args, **kwargs)


_model_construction.create_schema_validator = create_schema_validator
'''

TESTS = '''
import pytest

@pytest.mark.netlab({topology!r})
def test_lab(netlab_lab):
    pass

def test_factory(netlab_factory):
    netlab_factory({topology!r})

def test_after():
    open("after", "w").close()
'''

SAID = {"SIGINT": "KeyboardInterrupt", "SIGTERM": "netlab.signals.Terminated: interrupted by SIGTERM"}


@pytest.mark.parametrize("sig", sorted(SAID))
@pytest.mark.parametrize("fixture", ["test_lab", "test_factory"])
@pytest.mark.parametrize("where", ["validator", "finalizer"])
def test_a_stop_as_the_first_lab_loads_the_models_stops_the_run(tmp_path, sig, fixture, where):
    """``validator``: pydantic wraps the signal's exception in its SchemaError; ``finalizer``: an object's
    ``__del__`` swallows it (QA q46 1's exit 0: "Exception ignored in ...", the lab came up, the run went on)."""
    base = f"pi{uuid.uuid4().hex[:6]}"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_labs.py").write_text(TESTS.format(topology={"name": base, "nodes": [{"name": "n1"}]}))
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(netlab.__file__).parents[1]), env.get("PYTHONPATH", "")])
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", NETLAB_TEST_STOP=sig, NETLAB_TEST_WHERE=where,
               NETLAB_STATE_DIR=str(state))
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "netlab.pytest_plugin", "-p", "no:cacheprovider",
                          "-q", f"test_labs.py::{fixture}", "test_labs.py::test_after"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert (tmp_path / "loading").exists(), out  # the signal came as the models loaded
    assert run.returncode == 2, out  # pytest's ExitCode.INTERRUPTED
    assert f"!!! {SAID[sig]}" in out, out
    assert "SchemaError" not in out and "pydantic" not in out and "Exception ignored" not in out, out
    assert not (tmp_path / "after").exists(), out  # the run stopped there
    assert not [n for n in os.listdir(state) if not n.startswith(".")] if state.exists() else True, out
    netns = "/run/netns"
    assert not [n for n in (os.listdir(netns) if os.path.isdir(netns) else []) if n.startswith(base)]


class Stop:
    """A value whose repr raises the interrupt, as a Ctrl-C lands while pydantic-core builds a validator."""

    def __init__(self, stop: KeyboardInterrupt):
        self.stop = stop

    def __repr__(self) -> str:
        raise self.stop


def build_interrupted(stop: KeyboardInterrupt) -> None:
    pydantic_core.SchemaValidator(core_schema.literal_schema([Stop(stop)]))


def test_pydantic_wraps_the_interrupt_in_its_own_error():
    """What stopped() is for: pydantic-core's own wrapping, not a KeyboardInterrupt."""
    with pytest.raises(pydantic_core.SchemaError, match="KeyboardInterrupt"):
        build_interrupted(KeyboardInterrupt())


def test_stopped_raises_pythons_ctrl_c_that_pydantic_wrapped():
    with pytest.raises(KeyboardInterrupt) as info, stopped():
        build_interrupted(KeyboardInterrupt())
    assert isinstance(info.value.__cause__, pydantic_core.SchemaError)


def test_stopped_raises_the_plugins_sigterm_that_pydantic_wrapped(monkeypatch):
    """The plugin's SIGTERM handler raises signals.Terminated (no program's handler set): the same one."""
    from netlab import pytest_plugin

    monkeypatch.setattr(pytest_plugin, "_stopping", [])
    monkeypatch.setattr(pytest_plugin, "_workers", [])
    monkeypatch.setattr(signals, "_kept", [])
    try:
        pytest_plugin._sigterm(signal.SIGTERM, None)
    except signals.Terminated as exc:
        term = exc
    with pytest.raises(signals.Terminated) as info, stopped():
        build_interrupted(term)
    assert info.value is term


def test_stopped_leaves_other_errors_alone():
    with pytest.raises(pydantic_core.SchemaError), stopped():
        pydantic_core.SchemaValidator({"type": "no-such-type"})  # type: ignore[typeddict-item]
    with pytest.raises(ValueError), stopped():
        raise ValueError("mine")


def test_labs_raises_a_ctrl_c_that_loading_the_models_became(monkeypatch):
    """netlab.api.labs() loads the models for a lab without a file (the built-in default's topology)."""
    def labs():
        build_interrupted(KeyboardInterrupt())

    monkeypatch.setattr(running, "_labs", labs)
    with pytest.raises(KeyboardInterrupt):
        api.labs()


class Dropped:
    def __init__(self, stop: BaseException):
        self.stop = stop

    def __del__(self) -> None:
        raise self.stop


def test_unswallowed_raises_a_stop_a_finalizer_swallowed_at_the_blocks_end():
    seen = []
    with pytest.raises(KeyboardInterrupt) as info, signals.unswallowed():
        Dropped(KeyboardInterrupt("swallowed"))
        seen.append("the block went on")
    assert str(info.value) == "swallowed" and seen == ["the block went on"]


def test_unswallowed_passes_other_unraisables_on_and_puts_the_hook_back(monkeypatch):
    got = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: got.append(u.exc_type))
    mine = sys.unraisablehook
    with signals.unswallowed():
        Dropped(ValueError("not a stop"))
    assert got == [ValueError] and sys.unraisablehook is mine


def test_unswallowed_leaves_the_blocks_own_error_its_own():
    with pytest.raises(ValueError), signals.unswallowed():
        Dropped(KeyboardInterrupt())
        raise ValueError("mine")
