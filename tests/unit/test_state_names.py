"""The lab-name check that guards every path under the state directory (issue 9, section 4).

Pure checks, safe to run anywhere: the dangerous values (``/etc``) are only
ever given to the check itself, never to a command that could delete them.
"""

from __future__ import annotations

import os

import pytest

from netlab.errors import UsageError
from netlab.model.naming import lab_name_problem
from netlab.realize import lab_list, state, state_dir

BAD = ["/tmp/x", "../../tmp/x", ".", "..", "/etc", "/", "a" * 300, "", "demo\n", "Demo", "de mo", "-demo",
       "demo-", "a" * 25, "de\x00mo", "de/mo", "\u202edemo"]


@pytest.mark.parametrize("value", BAD, ids=[repr(v)[:20] for v in BAD])
def test_bad_lab_values_are_refused_before_any_path_is_made(value):
    with pytest.raises(UsageError) as info:
        state_dir.check_lab_name(value)
    text = str(info.value)
    assert "\n" not in text and "\x1b" not in text and len(text) < 300
    with pytest.raises(UsageError):
        state_dir.lab_dir(value, create=False)
    with pytest.raises(UsageError):
        lab_list.forget(value)
    assert lab_name_problem(value) is not None


@pytest.mark.parametrize("value", ["demo", "a", "a" * 24, "ib-1", "0lab"])
def test_good_lab_names_pass(value):
    assert state_dir.check_lab_name(value) == value
    assert lab_name_problem(value) is None


def test_same_rule_as_a_topologys_name(tmp_path):
    """--lab accepts exactly what name: accepts."""
    from netlab.errors import TopologyError
    from netlab.model.load import load_topology

    for value in ["demo", "a" * 24, "a" * 25, "Demo", "x_y"]:
        path = tmp_path / "t.yaml"
        path.write_text(f"name: {value}\nnodes: [{{name: a}}]\n")
        try:
            load_topology(str(path))
            file_ok = True
        except TopologyError:
            file_ok = False
        assert file_ok == (lab_name_problem(value) is None), value


# --- up -t other.yaml: the same lab name from another file ----------------------------------

def running(source):
    return state.LabState(lab="demo", source=source, phase="up")


def test_same_file_or_the_default_again_converges(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("x")
    state.check_source(None, str(path), reconfigure=False)  # a new lab
    state.check_source(running(str(path)), str(path), reconfigure=False)
    state.check_source(running(str(path)), os.path.relpath(path), reconfigure=False)
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    state.check_source(running(str(path)), str(link), reconfigure=False)  # the same file
    state.check_source(running(None), None, reconfigure=False)


@pytest.mark.parametrize("old,new", [("/labs/a.yaml", "/labs/b.yaml"), (None, "/labs/b.yaml"),
                                     ("/labs/a.yaml", None)])
def test_another_file_is_refused_unless_reconfigure(old, new):
    with pytest.raises(UsageError) as info:
        state.check_source(running(old), new, reconfigure=False)
    text = str(info.value)
    assert (old or "built-in default") in text and "--reconfigure" in text and "\n" not in text
    state.check_source(running(old), new, reconfigure=True)
