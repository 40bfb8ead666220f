"""A command's warnings go to stderr whatever -o is, as kubectl writes the API server's warnings; -o json/yaml
holds them too. `break -o json` said them on stderr and in its JSON; `up`, `down` and `impair` with -o json only in
the JSON, so a warning was never seen by whoever read the terminal rather than the document.

No root: each command's library call is a stub that returns a result with warnings."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli

from helpers import two_node_topology
from netlab.api import results as R

LAB = "jw1"


def up_result(warnings: tuple[str, ...]) -> R.UpResult:
    return R.UpResult(lab=LAB, changed=False, created_netns=(), removed_netns=(), fixed=(), operations=0,
                      warnings=warnings)


@pytest.fixture
def stubs(state_root, monkeypatch, tmp_path):
    """up, down and impair as root, each returning a result with warnings; the topology file `up -t` reads."""
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    for module in ("lab", "impair"):
        monkeypatch.setattr(f"netlab.cli.{module}.require_root", lambda: None)

    def up_loaded(cls, loaded, **kw):
        return types.SimpleNamespace(last_up=up_result(("up: a Service port no endpoint listens on",)),
                                     model=loaded.lab, owned=False, _repeated_warnings=())  # none said before

    monkeypatch.setattr("netlab.api.Lab.up_loaded", classmethod(up_loaded))
    monkeypatch.setattr("netlab.api.Lab.down", lambda self, **kw: R.DownResult(
        lab=LAB, was_up=True, removed_netns=(), skipped=("down: skipped one",), problems=("down: CNI DEL failed",)))
    monkeypatch.setattr("netlab.api.selected_name", lambda name, topology=None, required=True: name or LAB)
    monkeypatch.setattr("netlab.api.impair.impair", lambda *a, **k: types.SimpleNamespace(
        lab=LAB, target="a:eth0", netns=f"{LAB}-a", before="none", after="rate 1mbit",
        up=up_result(("impair: a warning of its up",))))
    path = tmp_path / "t.yaml"
    path.write_text(two_node_topology(LAB))
    return str(path)


@pytest.mark.parametrize("command, key, said", [
    ("up", "warnings", ["up: a Service port no endpoint listens on"]),
    ("down", "skipped", ["down: skipped one", "down: CNI DEL failed"]),
    ("impair", "warnings", ["impair: a warning of its up"]),
])
def test_warnings_are_on_stderr_with_json_too_as_with_text(stubs, command, key, said):
    args = {"up": ["up", "-t", stubs], "down": ["down", "--lab", LAB],
            "impair": ["impair", "--lab", LAB, "a:eth0", "--rate", "1mbit"]}[command]
    text = run_cli(*args)
    assert text.returncode == 0, text
    lines = [f"netlab: warning: {line}" for line in said]
    assert text.stderr.splitlines() == lines
    for fmt in ("json", "yaml"):
        data = run_cli(*args, "-o", fmt)
        assert (data.returncode, data.stderr.splitlines()) == (0, lines), data
    doc = json.loads(run_cli(*args, "-o", "json").stdout)  # stdout is the document alone, and holds them too
    held = doc[key] + (doc["problems"] if command == "down" else [])
    assert held == said
