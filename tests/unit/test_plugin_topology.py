"""The pytest plugin's topologies without root (netlab/pytest_topology.py): the unique lab name keeps every
namespace name within netlab's limit, and a marker or topology mistake is the test's error in one line,
with no traceback through netlab. Mistakes are found before the root check, so these run as any user."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.api.topology import load
from netlab.model.fields import NETNS_NAME_MAX
from netlab.pytest_topology import artifacts_folder, members, unique_name

ROOT = Path(__file__).resolve().parents[2]


def lab_with_pod(base: str, pod: str) -> dict:
    return {"name": base, "nodes": [{"name": "n1"}], "pods": [{"name": pod, "node": "n1"}]}


@pytest.mark.parametrize("tail", ["3fa9c1", "g1-3fa9c1", "g12-3fa9c1"])
def test_the_unique_name_leaves_room_for_the_longest_namespace(tail):
    """A topology `netlab validate` accepts (lab name + pod name = 62) ran under the plugin as
    `<base cut to 24>-<suffix>`, 7 characters longer than the base: the pod's namespace name was 69
    characters and the test errored telling its author to shorten a lab name they never chose."""
    topology = lab_with_pod("qx4zlongbasename", "q" * 45)
    loaded = load(topology)
    name = unique_name(loaded.lab.name, loaded, tail)
    assert name.endswith(f"-{tail}") and name.startswith("qx4z")
    renamed = load(topology, name)  # the loader's own checks: every namespace fits
    assert max(len(f"{name}-{member}") for _, member in members(renamed.lab)) <= NETNS_NAME_MAX


def test_short_names_keep_the_whole_base_up_to_the_lab_name_limit():
    loaded = load(lab_with_pod("web", "client"))
    assert unique_name("web", loaded, "g1-3fa9c1") == "web-g1-3fa9c1"
    assert unique_name("a-very-long-base-name-xyz", loaded, "3fa9c1") == "a-very-long-base-3fa9c1"  # 24


def test_a_name_too_long_for_any_unique_lab_name_is_said_in_the_plugins_words():
    """A 57-character pod leaves a lab name 5 characters: not even the random part fits. Said as the
    plugin's problem (what its suffix needs, which name to shorten, to what), not validate's."""
    loaded = load(lab_with_pod("qx4z", "p" * 57))
    with pytest.raises(pytest.fail.Exception) as caught:
        unique_name("qx4z", loaded, "3fa9c1")
    said = str(caught.value)
    assert said == ("netlab: <dict>: the plugin's unique lab name needs 8 characters (one of the base, then "
                    f"'-3fa9c1'), and a namespace name, <lab>-<name>, at most {NETNS_NAME_MAX}: shorten pod "
                    "pppppppppppppppppppp... (57 characters) to at most 54 characters")
    assert not caught.value.pytrace


MISTAKES = '''
import pytest

@pytest.mark.netlab({"name": "qx4inv", "nodes": [{"name": "N1"}]})
def test_bad_dict(netlab_lab):
    pass

@pytest.mark.netlab("nonexistent.yaml")
def test_missing_file(netlab_lab):
    pass

@pytest.mark.netlab(42)
def test_not_a_topology(netlab_lab):
    pass

def test_factory(netlab_factory):
    netlab_factory(42)

def test_no_marker(netlab_lab):
    pass
'''

NAMES = '''
import pytest

@pytest.mark.netlab("nonexistent.yaml", name="q" * 25)
def test_long(netlab_lab):
    pass

@pytest.mark.netlab(None, name="q" * 25, scope="module")
def test_long_shared(netlab_lab):
    pass

@pytest.mark.netlab(None, name=42)
def test_not_a_string(netlab_lab):
    pass

@pytest.mark.netlab(None, name="Qx_4")
def test_not_a_label(netlab_lab):
    pass
'''

FACTORY_ARGS = '''
import pytest

@pytest.mark.parametrize("kwargs", [dict(name=42), dict(name="q" * 25), dict(name="Qx_4"), dict(wait="x"),
                                    dict(wait=-1), dict(wait=float("nan")), dict(wait=True)])
def test_factory_kwargs(netlab_factory, kwargs):
    netlab_factory("nonexistent.yaml", **kwargs)
'''

FILES = {"test_mistakes.py": MISTAKES, "test_names.py": NAMES, "test_factory_args.py": FACTORY_ARGS}


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One pytest run for the tests below, in a folder of its own (its rootdir), on the test files of FILES in its
    ``sub`` folder, with this checkout's plugin (its entry point, this tree first on the path)."""
    root = tmp_path_factory.mktemp("mistakes")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "sub").mkdir()
    for name, source in FILES.items():
        (root / "sub" / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "sub"], cwd=root,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "8 failed, 8 errors" in proc.stdout, proc.stdout + proc.stderr
    return root, proc


HEADER = re.compile(r"_{3,} (?:ERROR at setup of )?(\w+)(?:\[\w+\])? _{3,}")


def said(out: str, file: str) -> tuple[list[str], str]:
    """What the run said of ``file``'s tests: the outcome of each (its short summary's word), and the text of its
    tests' reports (each from its ``___ name ___`` header to the next) with their summary lines."""
    tests = set(re.findall(r"^def (test_\w+)", FILES[file], re.M))
    summary = [line for line in out.splitlines() if line.split(" ", 1)[-1].startswith(f"sub/{file}::")]
    sections, mine = [], False
    for line in out.splitlines():
        header = HEADER.fullmatch(line)
        if header is not None or line.startswith("="):
            mine = header is not None and header.group(1) in tests
        if mine:
            sections.append(line)
    return sorted(line.split()[0] for line in summary), "\n" + "\n".join(sections + summary) + "\n"


def test_a_topology_or_marker_mistake_is_one_line_without_netlabs_traceback(mistakes):
    root, proc = mistakes
    outcomes, out = said(proc.stdout, "test_mistakes.py")
    assert outcomes == ["ERROR"] * 4 + ["FAILED"], proc.stdout
    assert (f"\nnetlab: topology file 'nonexistent.yaml' not found: looked at {root}/sub/nonexistent.yaml "
            f"(beside the test file), then {root}/nonexistent.yaml (the rootdir and the current directory)\n"
            ) in out
    assert ("\nnetlab: pytest.UsageError: @pytest.mark.netlab: topology 42: want a path (beside the test file), "
            "a dict shaped like the YAML or None (the built-in default), not int\n") in out
    assert "\nnetlab: pytest.UsageError: netlab_factory: topology 42: want a path" in out
    assert "\nnetlab: pytest.UsageError: sub/test_mistakes.py::test_no_marker: the netlab_lab fixture needs a" in out
    # nothing of netlab's insides, nor of the plugin's: no traceback, no source lines, no chained exception
    for inside in ("Traceback", "netlab/", "TopologyError", "TypeError", "During handling", "\nE  "):
        assert inside not in out, out


def test_a_marker_name_that_is_no_lab_name_is_refused_at_its_setup_in_one_line(mistakes):
    """A marker's ``name=`` over 24 characters was refused only when the lab was loaded, in the loader's words
    ("a lab name is at most 24 (it prefixes every namespace name)"), naming no marker. It is a marker argument's
    mistake, refused by the marker's setup as a wrong scope is, in one line naming the argument and the limit,
    before any topology is read (the file here does not exist)."""
    outcomes, out = said(mistakes[1].stdout, "test_names.py")
    assert outcomes == ["ERROR"] * 4, mistakes[1].stdout
    long = ("\nnetlab: pytest.UsageError: @pytest.mark.netlab: name 'qqqqqqqqqqqqqqqqqqqqqqqqq' is 25 characters: "
            "want at most 24 (a lab name's limit; the plugin cuts it to add the lab's unique suffix)\n")
    assert out.count(long) == 2, out
    assert "\nnetlab: pytest.UsageError: @pytest.mark.netlab: name must be a string, not a number\n" in out
    assert "\nnetlab: pytest.UsageError: @pytest.mark.netlab: name 'Qx_4' is not a DNS label;" in out
    for other in ("not found", "namespace", "Traceback", "\nE  "):
        assert other not in out, out


def test_a_factory_name_or_wait_of_the_wrong_kind_is_one_line_before_any_file_is_read(mistakes):
    """``netlab_factory`` checked only ``topology``: ``name=42`` came back from netlab.api.load in its words, a
    ``name`` too long for a lab name was cut and taken, one that is no DNS label raised a TopologyError with a
    traceback through netlab, and ``wait="x"`` was said by Lab.up_loaded only after root and the machine were
    checked (without root: skipped, never said). Each is now the marker's one line naming netlab_factory, said
    before the topology file (missing here) is looked for."""
    outcomes, out = said(mistakes[1].stdout, "test_factory_args.py")
    assert outcomes == ["FAILED"] * 7, mistakes[1].stdout
    said_ = [line.removeprefix("netlab: pytest.UsageError: netlab_factory: ") for line in out.splitlines()
             if line.startswith("netlab: pytest.UsageError: netlab_factory: ")]
    assert len(said_) == 7, out
    assert said_ == ["name must be a string, not a number",
                     "name 'qqqqqqqqqqqqqqqqqqqqqqqqq' is 25 characters: want at most 24 (a lab name's limit; the "
                     "plugin cuts it to add the lab's unique suffix)",
                     said_[2], "wait must be a number of seconds, not str 'x'",
                     "wait -1 is not a finite number of seconds, 0 or more",
                     "wait nan is not a finite number of seconds, 0 or more",
                     "wait must be a number of seconds, not bool True"], out
    assert said_[2].startswith("name 'Qx_4' is not a DNS label;"), out
    for other in ("not found", "Traceback", "TopologyError", "netlab.api.load", "Lab.up_loaded", "\nE  "):
        assert other not in out, out


# --- the artifacts folder ----------------------------------------------------------------------


def test_two_test_files_with_the_same_test_get_folders_of_their_own():
    one = artifacts_folder("dup/test_one.py::test_same[9999]")
    two = artifacts_folder("dup/test_two.py::test_same[9999]")
    assert one != two
    assert re.fullmatch(r"dup_test_one\.py--test_same_9999_-[0-9a-f]{8}", one), one


@pytest.mark.parametrize("a, b", [("t.py::t[a b]", "t.py::t[a_b]"), ("a/b.py::t", "a_b.py::t"),
                                  ("x/" + "p" * 200 + ".py::t", "y/" + "p" * 200 + ".py::t")])
def test_ids_that_read_alike_once_made_safe_or_cut_stay_apart(a, b):
    assert artifacts_folder(a) != artifacts_folder(b)


@pytest.mark.parametrize("nodeid", ["../../etc/test_x.py::t", "/abs/t.py::t[\x00\n/..]", "..", ".", "",
                                    "t.py::test_\u00fc[\U0001f600]", "t.py::t[\udcff]", "t.py::" + "z" * 5000])
def test_nothing_of_a_test_id_but_safe_characters_reaches_the_file_name(nodeid):
    name = artifacts_folder(nodeid)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name), name
    assert len(name) <= 109 and name not in (".", "..")
