"""A working directory deleted under netlab (QA q50 6): a relative path the user gave is one line naming it, never
the traceback of os.path.abspath's getcwd (FileNotFoundError), exit 2 for an output file and exit 3 for a relative
NETLAB_STATE_DIR, in the words of any other unusable state folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from netlab.errors import UsageError


@pytest.fixture
def gone(tmp_path, monkeypatch):
    """This process in a folder that was deleted."""
    here = tmp_path / "gone"
    here.mkdir()
    monkeypatch.chdir(here)
    here.rmdir()
    with pytest.raises(FileNotFoundError):
        os.getcwd()
    return here


def test_an_output_file_relative_to_a_deleted_folder_is_one_line_exit_2(gone):
    from netlab.cli.output import check_output_file

    with pytest.raises(UsageError) as caught:
        check_output_file("out.svg")
    text = str(caught.value)
    assert text.startswith("cannot write out.svg: the current directory was deleted") and "\n" not in text, text
    assert caught.value.exit_code == 2 and "absolute path" in text
    with pytest.raises(UsageError, match="--junit -"):  # what was refused before still is
        check_output_file("-", "--junit")


def test_an_absolute_path_needs_no_working_directory(gone, tmp_path):
    from netlab.errors import cwd_gone

    assert cwd_gone("/tmp/x") is None and cwd_gone("x") is not None
    from netlab.cli.output import check_output_file

    check_output_file(str(tmp_path / "out.svg"))


def test_a_relative_cni_log_is_named(gone, monkeypatch):
    from netlab.cni import invoke

    monkeypatch.setenv(invoke.LOG_VAR, "calls.jsonl")
    with pytest.raises(UsageError, match="NETLAB_CNI_LOG=calls.jsonl: the current directory was deleted"):
        invoke.keep_copy()


def test_a_topology_as_text_with_a_relative_conflist_is_a_problem_of_that_field(gone):
    from netlab.errors import TopologyError
    from netlab.model.load import parse_yaml, validate_source

    src = parse_yaml("name: t\nnetwork: {cni: {conflist: net.conflist, binDir: bin}}\nnodes: [{name: n1}]\n",
                     "<string>")
    with pytest.raises(TopologyError) as caught:
        validate_source(src)
    text = str(caught.value)
    assert "network.cni.conflist" in text and "the current directory was deleted, so net.conflist" in text, text
    assert "network.cni.binDir" in text and "so bin (relative to it)" in text, text


def test_a_walk_of_a_relative_path_says_why(gone):
    from netlab.model.pathwalk import Names

    with pytest.raises(FileNotFoundError, match="the current directory was deleted, so x"):
        Names("x")


CHECK = """
from netlab.errors import NetlabError
from netlab.realize import state_dir
from netlab import doctor_host
print(state_dir.STATE_ROOT)
try:
    state_dir.root_there()
except NetlabError as exc:
    print(exc.exit_code, exc)
try:
    state_dir.state_root()
except NetlabError as exc:
    print(exc.exit_code, exc)
perm, space = doctor_host.check_state_dir(state_dir.STATE_ROOT, True)
print(perm.status, perm.detail)
"""


def test_a_relative_state_dir_is_refused_as_any_unusable_state_folder(tmp_path):
    here = tmp_path / "gone"
    here.mkdir()
    # Every entry absolute: Python itself cannot start in a deleted directory with a relative one (or an empty
    # one, the current directory) on its path.
    path = [os.getcwd()] + [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, NETLAB_STATE_DIR="rel", PYTHONPATH=os.pathsep.join(path))
    out = subprocess.run(["sh", "-c", 'cd "$1" && rmdir "$1" && exec "$2" -c "$3"', "sh", str(here), sys.executable,
                         CHECK], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and not out.stderr, out
    lines = out.stdout.splitlines()
    said = ("cannot use rel: the current directory was deleted, so rel (relative to it) cannot be resolved; point "
            "NETLAB_STATE_DIR at a directory of root's own")
    assert lines[0] == "rel" and lines[1].startswith("3 " + said) and lines[2].startswith("3 " + said), lines
    assert lines[3].startswith("FAIL rel: the current directory was deleted"), lines
