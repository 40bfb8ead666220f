"""netlab/fncache.py: the program's dataclasses take their methods, and typing its string annotations, from a
file of compiled code, by source text."""

from __future__ import annotations

import builtins
import dataclasses
import os
import subprocess
import sys
import types
import typing

import pytest

from netlab import fncache


def _define(cache: fncache.Compiled, monkeypatch: pytest.MonkeyPatch) -> type:
    """A frozen dataclass with a default and a factory, defined with ``cache`` standing in for dataclasses' exec."""
    monkeypatch.setattr(dataclasses, "exec", cache.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class Veth:
        name: str
        mtu: int = 1500
        peers: list[str] = dataclasses.field(default_factory=list)

    monkeypatch.delattr(dataclasses, "exec")
    return Veth


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on the cache has the builtins it runs its code with, and no compile."""
    fail = lambda *a, **k: pytest.fail("compiled again")  # noqa: E731
    monkeypatch.setattr(fncache, "builtins", types.SimpleNamespace(exec=builtins.exec, compile=fail))


def _behaves(cls: type) -> None:
    a, b = cls("veth0"), cls("veth0", 1500, [])
    assert a == b and a != cls("veth1") and a.mtu == 1500 and a.peers == []
    assert repr(cls("v1", 9000, ["x"])).endswith("Veth(name='v1', mtu=9000, peers=['x'])")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.mtu = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cls()


def test_a_method_compiled_once_is_taken_from_the_file_by_the_next_process(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first = fncache.Compiled(str(tmp_path / "fns.bin"))
    first.load()
    _behaves(_define(first, monkeypatch))
    assert first.added and first.codes
    first.save()
    second = fncache.Compiled(str(tmp_path / "fns.bin"))
    second.load()
    assert set(second.codes) == set(first.codes)
    _no_compiling(monkeypatch)
    _behaves(_define(second, monkeypatch))
    assert not second.added


def test_an_annotation_compiled_once_is_taken_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first = fncache.Compiled(str(tmp_path / "fns.bin"))
    monkeypatch.setattr(typing, "compile", first.compile, raising=False)
    assert typing.ForwardRef("dict[str, int]")._evaluate(globals(), None, frozenset()) == dict[str, int]
    with pytest.raises(SyntaxError):
        typing.ForwardRef("dict[")
    first.save()
    second = fncache.Compiled(str(tmp_path / "fns.bin"))
    second.load()
    monkeypatch.setattr(typing, "compile", second.compile, raising=False)
    _no_compiling(monkeypatch)
    assert typing.ForwardRef("dict[str, int]")._evaluate(globals(), None, frozenset()) == dict[str, int]
    assert not second.added


def test_a_file_others_may_write_or_a_damaged_one_is_no_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "fns.bin"
    first = fncache.Compiled(str(path))
    _define(first, monkeypatch)
    first.save()
    os.chmod(path, 0o666)
    shared = fncache.Compiled(str(path))
    shared.load()
    assert shared.codes == {}  # code another user could have written runs as root: not read
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-40])
    cut = fncache.Compiled(str(path))
    cut.load()
    assert cut.codes == {}
    _behaves(_define(cut, monkeypatch))  # compiled as Python would


def test_nothing_is_written_where_python_writes_no_bytecode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = fncache.Compiled(str(tmp_path / "fns.bin"))
    _define(cache, monkeypatch)
    cache.save()
    assert not (tmp_path / "fns.bin").exists()


def test_the_program_reads_the_cache_and_another_program_is_left_alone():
    """launch.py installs it as it starts (dataclasses' exec and typing's compile are the cache's); ``import
    netlab`` does not."""
    code = ("import atexit, dataclasses, sys, typing\n"
            "import netlab.api, netlab.launch\n"
            "print(hasattr(dataclasses, 'exec'), hasattr(typing, 'compile'), file=sys.stderr)\n"
            "atexit.register(lambda: print(dataclasses.exec.__qualname__, typing.compile.__qualname__,\n"
            "                              file=sys.stderr))\n"
            "sys.argv = ['netlab', '--version']\n"
            "netlab.launch.main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split() == ["False", "False", "Compiled.exec", "Compiled.compile"]
