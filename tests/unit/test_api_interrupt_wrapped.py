"""Ctrl-C that a wrapper made an error of its own reaches a Python caller as KeyboardInterrupt. QA q22 2: a SIGINT
during the first ``Lab.up`` of a process, while pydantic built the topology model's validator, came out as
``pydantic_core.SchemaError: Error building "model" validator: ... KeyboardInterrupt:`` (no cause), so ``except
KeyboardInterrupt`` missed it and a traceback ended the program; the CLI said it as the signal (signals.stop_of)."""

from __future__ import annotations

import pydantic_core
import pytest

from netlab import api, signals
from netlab.api import lifecycle, topology as api_topology
from netlab.errors import NetlabError

TOPOLOGY = {"name": "pyk1", "nodes": [{"name": "n1"}]}
# What pydantic raises when Python's KeyboardInterrupt lands as it builds a validator (pyo3 names it, no cause)
BUILDING = ('Error building "model" validator:\n  SchemaError: Error building "model-fields" validator:\n'
            '  SchemaError: Field "kube_proxy_mode":\n  SchemaError: Error building "literal" validator:\n'
            '  KeyboardInterrupt: ')


def schema_interrupted() -> BaseException:
    return pydantic_core.SchemaError(BUILDING)


def import_interrupted() -> BaseException:
    """Python's RuntimeError of a KeyboardInterrupt in a dataclass field's __set_name__: its cause."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'x' in 'C'") from stop
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("made", [schema_interrupted, import_interrupted])
def test_lab_up_interrupted_as_a_validator_is_built_raises_keyboardinterrupt(monkeypatch, made):
    def load(*args, **kwargs):
        raise made()

    monkeypatch.setattr(api_topology, "load", load)
    with pytest.raises(KeyboardInterrupt) as info:
        api.Lab.up(TOPOLOGY)
    assert not isinstance(info.value, signals.Kept)  # Python's own: no handler of the program's here


def test_api_load_interrupted_raises_keyboardinterrupt(monkeypatch):
    def load(*args, **kwargs):
        raise schema_interrupted()

    monkeypatch.setattr(api_topology, "_load", load)
    with pytest.raises(KeyboardInterrupt) as info:
        api.load(TOPOLOGY)
    assert isinstance(info.value.__cause__, pydantic_core.SchemaError)  # what it became, for a traceback


def test_a_schema_error_that_names_no_interrupt_is_its_own(monkeypatch):
    def load(*args, **kwargs):
        raise pydantic_core.SchemaError('Error building "model" validator:\n  SchemaError: Invalid Schema')

    monkeypatch.setattr(api_topology, "load", load)
    with pytest.raises(pydantic_core.SchemaError):
        api.Lab.up(TOPOLOGY)


def test_an_error_while_the_caller_handles_a_ctrl_c_is_its_own(monkeypatch):
    """A with block's end takes its lab down after Ctrl-C: what that down meets is its own error (the with block
    adds it to the KeyboardInterrupt as a note), not the Ctrl-C the caller is handling."""
    def down(*args, **kwargs):
        raise NetlabError("down failed")

    monkeypatch.setattr(lifecycle, "down", down)
    got: BaseException | None = None
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        try:
            api.Lab("pyk1").down()
        except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt here would end the test session
            got = exc
    assert isinstance(got, NetlabError) and str(got) == "down failed", repr(got)


def test_the_program_keeps_its_own_signal(monkeypatch):
    """The netlab program's SIGTERM (signals.Terminated, exit 143) stays itself through a Lab method."""
    monkeypatch.setattr(signals, "_kept", [])
    monkeypatch.setattr(signals, "_raised", [])
    try:
        signals.raise_terminated(15, None)
    except KeyboardInterrupt as exc:
        term = exc

    def load(*args, **kwargs):
        raise pydantic_core.SchemaError(f'Error building "literal" validator:\n  Terminated: {term}')

    monkeypatch.setattr(api_topology, "load", load)
    with pytest.raises(signals.Terminated) as info:
        api.Lab.up(TOPOLOGY)
    assert info.value is term and signals.exit_code(info.value) == 143
