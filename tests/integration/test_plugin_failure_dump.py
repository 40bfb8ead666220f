"""What the pytest plugin writes and says for a failed test (root; pytest runs a test file in a subprocess).

A lab shared by the tests of a scope is one ``Lab`` object: a failed test's ``reaches.json`` and
``traces.json`` held the other tests' results (the README says "the test's last"), and ``--netlab-keep``
listed the lab once per failed test. ``watch(item, lab)`` of a lab the test brought up in a ``with Lab.up``
block wrote a dump of a lab that was down (the block had taken it down): now the plugin takes the lab's state
as the block takes it down with the test's failure, and writes it when the test has failed.
"""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import lab_namespaces, netlab, unique_lab
from test_pytest_plugin import ROOT, names_written, pytest_in

pytestmark = pytest.mark.root


def _tiny(base: str) -> str:
    return json.dumps({"name": base, "nodes": [{"name": "n1"}],
                       "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]})


def _folders(artifacts, test: str) -> list:
    return sorted(artifacts.glob(f"test_case.py--{test}-*/*"))


def test_a_shared_labs_dump_holds_the_failed_tests_own_reaches_and_traces_only(tmp_path):
    artifacts = tmp_path / "artifacts"
    proc = pytest_in(tmp_path, f'''
import pytest

pytestmark = pytest.mark.netlab({_tiny(unique_lab("pl"))}, scope="module")

def test_one_passes(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    assert netlab_lab.reach("a", "b", "icmp").reachable
    assert netlab_lab.trace("a", "b").delivered

def test_two_fails_without_reaching(netlab_lab):
    assert False, "on purpose"

def test_three_fails_after_its_own_reach(netlab_lab):
    assert netlab_lab.reach("b", "a", "icmp").reachable
    assert False, "on purpose"
''', "--netlab-artifacts", str(artifacts))
    out = proc.stdout + proc.stderr
    (name,) = names_written(tmp_path)
    assert proc.returncode == 1 and "2 failed, 1 passed" in out, out
    (two,) = _folders(artifacts, "test_two_fails_without_reaching")
    assert json.loads((two / "reaches.json").read_text()) == []
    assert json.loads((two / "traces.json").read_text()) == []
    assert json.loads((two / "probe.json").read_text())["ok"] is True  # the lab was up, and read
    (three,) = _folders(artifacts, "test_three_fails_after_its_own_reach")
    reaches = json.loads((three / "reaches.json").read_text())
    assert [(r["source"], r["destination"]) for r in reaches] == [("b", "a")], reaches
    assert json.loads((three / "traces.json").read_text()) == []
    assert lab_namespaces(name) == []


def test_netlab_keep_names_a_shared_lab_once_however_many_of_its_tests_failed(tmp_path):
    proc = pytest_in(tmp_path, f'''
import pytest

@pytest.mark.parametrize("i", [1, 2])
@pytest.mark.netlab({_tiny(unique_lab("pl"))}, scope="module")
def test_mod(netlab_lab, i):
    open("name-1", "w").write(netlab_lab.name)
    assert False
''', "--netlab-keep")
    out = proc.stdout + proc.stderr
    (name,) = names_written(tmp_path)
    try:
        assert proc.returncode == 1 and "2 failed" in out, out
        summary = out.split("netlab: labs kept up (--netlab-keep)", 1)[1]
        kept = [line for line in summary.splitlines() if line.startswith("lab ")]
        assert kept == [next(line for line in kept if line.startswith(f"lab {name} stays up: "))], summary
        assert lab_namespaces(name), "the lab stays up"
    finally:
        netlab("down", "--lab", name, check=False)
    assert lab_namespaces(name) == []


def test_watch_of_a_with_block_lab_writes_the_lab_as_it_was_when_the_test_failed(tmp_path):
    artifacts = tmp_path / "artifacts"
    proc = pytest_in(tmp_path, f'''
import pytest
from netlab import Lab
from netlab.pytest_plugin import watch

def test_own_lab(request):
    with Lab.up({_tiny(unique_lab("pl"))}) as lab:
        open("name-1", "w").write(lab.name)
        watch(request.node, lab)
        assert lab.reach("a", "b", "icmp").reachable
        assert False, "on purpose"

def test_own_lab_passes(request):
    lab = Lab.up({_tiny(unique_lab("pl"))})
    open("name-2", "w").write(lab.name)
    watch(request.node, lab)
    with pytest.raises(ZeroDivisionError):  # an error the test expects, as the block takes the lab down
        with lab:
            1 / 0
''', "--netlab-artifacts", str(artifacts))
    out = proc.stdout + proc.stderr
    name, other = ((tmp_path / f"name-{i}").read_text() for i in (1, 2))
    assert proc.returncode == 1 and "1 failed, 1 passed" in out, out
    (folder,) = _folders(artifacts, "test_own_lab")
    assert folder.name == name and not (folder / "error.txt").exists(), out
    inspected = {p.stem: json.loads(p.read_text()) for p in (folder / "inspect").glob("*.json")}
    assert set(inspected) == {"n1", "a", "b", "underlay"} and inspected["a"]["netns"] == f"{name}-a"
    assert json.loads((folder / "probe.json").read_text())["ok"] is True
    assert json.loads((folder / "status.json").read_text())["ok"] is True
    assert [r["destination"] for r in json.loads((folder / "reaches.json").read_text())] == ["b"]
    assert _folders(artifacts, "test_own_lab_passes") == []
    assert lab_namespaces(name) == [] and lab_namespaces(other) == []


def test_a_cni_labs_dump_holds_its_plugin_calls_and_the_markers_dict_finds_its_conflist_beside_the_test(tmp_path):
    """A plugin author's failed test: the dump holds the lab's CNI calls (cni-calls.json, `netlab cni log -o json`'s),
    which a builtin lab's has not; the marker's dict names examples/cni/bash-bridge's conflist and plugin relative
    to the test file's folder, and pytest runs from another folder (the dict's paths were the current
    directory's: "no such file")."""
    tests = tmp_path / "tests"
    tests.mkdir()
    example = ROOT / "examples" / "cni" / "bash-bridge"
    for name in ("bash-bridge", "bash-bridge.conflist"):
        shutil.copy2(example / name, tests / name)
    artifacts = tmp_path / "artifacts"
    topology = {"name": unique_lab("clpd"), "network": {"cni": {"conflist": "./bash-bridge.conflist", "binDir": "."}},
                "nodes": [{"name": "n1", "podCIDR": "10.244.0.0/24"}],
                "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]}
    proc = pytest_in(tests, f'''
import pytest

@pytest.mark.netlab({json.dumps(topology)})
def test_plugin_fails(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)  # in the folder pytest runs from
    assert [c.command for c in netlab_lab.cni_log("a").calls if c.plugin == "bash-bridge"] == ["ADD"]
    assert False, "on purpose"

@pytest.mark.netlab({_tiny(unique_lab("clpd"))})
def test_builtin_fails(netlab_lab):
    assert False, "on purpose"
''', "--netlab-artifacts", str(artifacts), cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "2 failed" in out and "on purpose" in out, out
    (name,) = names_written(tmp_path)
    (folder,) = sorted(artifacts.glob("*test_plugin_fails-*/*"))
    calls = json.loads((folder / "cni-calls.json").read_text())
    assert calls["lab"] == name and calls["pod"] is None
    added = sorted((c["pod"], c["plugin"]) for c in calls["calls"] if c["command"] == "ADD")
    assert added == [("a", "bash-bridge"), ("a", "loopback"), ("b", "bash-bridge"), ("b", "loopback")], added
    assert {c["command"] for c in calls["calls"]} == {"ADD", "CHECK"}  # and status.json's CHECKs
    assert all(c["exit_code"] == 0 and "elapsed_s" in c for c in calls["calls"])
    (builtin,) = sorted(artifacts.glob("*test_builtin_fails-*/*"))
    assert (builtin / "status.json").exists() and not (builtin / "cni-calls.json").exists()
    assert lab_namespaces(name) == []


@pytest.mark.parametrize("keep", [False, True])
def test_a_lab_taken_down_from_another_shell_during_its_test_is_said_not_up_not_dumped(tmp_path, keep):
    """The test's lab taken down by a `netlab down` of another shell while the test runs: the failure folder
    held error.txt, probe.json and status.json saying only "is not up (labs up: <other labs>)", and empty reaches
    and traces; the report said it "could not be read when the test failed: error.txt says why", and with
    --netlab-keep that it "stays up". Now the report says the lab was not up when the test failed, and writes no
    folder that looks like a dump (as of a lab the test took down itself)."""
    artifacts = tmp_path / "artifacts"
    proc = pytest_in(tmp_path, f'''
import subprocess, sys
import pytest

@pytest.mark.netlab({_tiny(unique_lab("ll"))})
def test_lab_goes_away(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    subprocess.run([sys.executable, "-m", "netlab", "down", "--lab", netlab_lab.name], check=True)  # "another shell"
    assert False, "on purpose"
''', "--netlab-artifacts", str(artifacts), *(["--netlab-keep"] if keep else []))
    out = proc.stdout + proc.stderr
    (name,) = names_written(tmp_path)
    assert proc.returncode == 1 and "1 failed" in out, out
    assert "the lab as it was" not in out and "stays up" not in out, out  # (--netlab-keep: nothing to keep)
    lines = [line for line in out.splitlines() if line.startswith(f"lab {name} ") and "when the test failed" in line]
    assert len(lines) == 1, out
    (line,) = lines
    assert line == (f"lab {name} was not up when the test failed: it was taken down outside the test (a `netlab "
                    f"down` in another shell, say; netlab keeps no record of who took it down): nothing of it to "
                    f"write"), line
    assert not list(artifacts.glob(f"*/{name}")), list(artifacts.rglob("*"))  # no folder that looks like a dump
    assert lab_namespaces(name) == []
