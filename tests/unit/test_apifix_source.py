"""A lab brought up from a dict is listed as <dict>, not as the built-in default; the API's conflict error
says so and names reconfigure=True (no root)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from netlab.api import lab as lab_mod, running
from netlab.api.topology import load
from netlab.errors import UsageError, netlab_command
from netlab.realize.state import LabState, check_source

from helpers import two_node


def saved(topology, name: str, source: str | None = None) -> LabState:
    """The state ``up`` saves for ``topology``."""
    loaded = load(topology, name)
    return LabState(lab=name, topology=loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                    source=source if source is not None else loaded.source, phase="up")


def test_source_label_tells_a_dict_from_the_built_in_default():
    assert running.source_label(saved(None, "fxedef")) == "built-in default"  # the default under another name
    assert running.source_label(saved(two_node("fxedict"), "fxedict")) == "<dict>"
    assert running.source_label(saved(two_node("fxefile"), "fxefile", "/tmp/x.yaml")) == "/tmp/x.yaml"


def test_list_shows_a_dict_lab_as_dict(monkeypatch):
    states = [saved(None, "fxea"), saved(two_node("fxeb"), "fxeb"), saved(two_node("fxec"), "fxec", "/t/c.yaml")]
    monkeypatch.setattr(running, "iter_states", lambda: iter(states))
    assert [(i.lab, i.source) for i in running.labs()] == [("fxea", "built-in default"), ("fxeb", "<dict>"),
                                                         ("fxec", "/t/c.yaml")]


def test_the_cli_message_does_not_call_a_dict_lab_the_built_in_default():
    with pytest.raises(UsageError) as err:
        check_source(saved(two_node("fxed"), "fxed"), "/tmp/fxed.yaml", False)
    assert "is up from the built-in default or a dict (no file), and /tmp/fxed.yaml" in str(err.value)
    # the way to replace the running lab names the file given: a plain `up --reconfigure` applies the built-in one
    assert str(err.value).endswith(f"replace the running lab with `{netlab_command('up -t /tmp/fxed.yaml --reconfigure')}`")


@pytest.mark.parametrize("running,given,words", [
    ("/tmp/fxee.yaml", "dict", "is up from /tmp/fxee.yaml, and a dict has the same name"),
    (None, "/tmp/fxee.yaml", "is up from a dict, and /tmp/fxee.yaml has the same name"),
])
def test_the_api_says_the_conflict_its_own_way(monkeypatch, tmp_path, running, given, words):
    running_state = saved(two_node("fxee"), "fxee", running)
    monkeypatch.setattr("netlab.realize.state.load_state", lambda name: running_state)
    if given == "dict":
        topology = two_node("fxee")
    else:
        given = str(tmp_path / "fxee.yaml")
        words = words.replace("/tmp/fxee.yaml", given)
        with open(given, "w") as f:
            import yaml

            yaml.safe_dump(two_node("fxee"), f)
        topology = given

    def refuse(lab, source=None, **kwargs):
        check_source(running_state, source, kwargs.get("reconfigure", False))
        raise AssertionError("not refused")

    monkeypatch.setattr(lab_mod.lifecycle, "up", refuse)
    with pytest.raises(UsageError) as err:
        lab_mod.Lab.up(topology)
    assert words in str(err.value)
    assert "pass reconfigure=True" in str(err.value) and "--reconfigure" not in str(err.value)
    if given == "dict":  # the pytest plugin's way in: up_loaded with a dict
        with pytest.raises(UsageError, match="a dict has the same name.*reconfigure=True"):
            lab_mod.Lab.up_loaded(load(topology))


def test_the_cli_way_in_keeps_the_cli_message(monkeypatch, tmp_path):
    """up_loaded with a file is also `netlab up`'s: its message names --reconfigure."""
    running_state = saved(two_node("fxef"), "fxef", "/tmp/other.yaml")
    monkeypatch.setattr("netlab.realize.state.load_state", lambda name: running_state)
    path = tmp_path / "fxef.yaml"
    import yaml

    path.write_text(yaml.safe_dump(two_node("fxef")))
    monkeypatch.setattr(lab_mod.lifecycle, "up", lambda lab, source=None, **kw: check_source(running_state, source,
                                                                                              False))
    with pytest.raises(UsageError, match=re.escape(f"`{netlab_command(f'up -t {path} --reconfigure')}`")):
        lab_mod.Lab.up_loaded(load(str(path)))


def test_other_usage_errors_pass_through(monkeypatch):
    monkeypatch.setattr("netlab.realize.state.load_state", lambda name: None)

    def fail(lab, **kwargs):
        raise UsageError("something else")

    monkeypatch.setattr(lab_mod.lifecycle, "up", fail)
    with pytest.raises(UsageError, match="^something else$"):
        lab_mod.Lab.up(two_node("fxeg"))


def test_list_reads_the_state_files_alone_for_labs_with_a_file(state_root):
    """`netlab list` loaded the topology models (pydantic, ~0.15 s) for a table the state files give; now
    only a lab without a file (the built-in default or a dict) needs them, to tell the two apart."""
    saved(two_node("fxef"), "fxef", "/tmp/fxef.yaml").save()
    # The machine's labs up with other state folders (found by their namespaces' tags) are not this test's: what
    # list does for them while other tests bring labs up and down (a lab mid-up, mid-down) is tested elsewhere, and
    # is left out here (tags.tagged_labs finds none), so that only the state files' rows are judged.
    code = ("import sys\nfrom netlab.realize import tags\ntags.tagged_labs = lambda **kwargs: []\n"
            "from netlab import api\nrows = api.labs()\n"
            "print([(r.lab, r.nodes, r.source) for r in rows], 'pydantic' in sys.modules)")

    def listed() -> str:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "NETLAB_STATE_DIR": str(state_root)})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert listed() == "[('fxef', 2, '/tmp/fxef.yaml')] False"
    saved(two_node("fxeg"), "fxeg").save()  # a dict's lab: no file
    assert listed() == "[('fxef', 2, '/tmp/fxef.yaml'), ('fxeg', 2, '<dict>')] True"
