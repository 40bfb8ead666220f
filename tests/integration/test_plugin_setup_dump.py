"""The failure dump of a test whose setup or teardown failed (root; pytest runs a test file in a subprocess).

The plugin wrote a failed test's labs from the call phase's report only: a test whose setup failed (a fixture
after the lab's raised, one that brought a lab up raised, a container of its lab could not start) never has a
call, and nothing was written, though that is when the lab's state says most. Now the first phase that fails
writes them, once: its setup, its call, or its teardown (then the labs still there to read: a lab a scope's
tests share; a lab its fixtures took down is gone).
"""

from __future__ import annotations

import json

import pytest

from helpers import lab_namespaces, netlab, unique_lab
from test_pytest_plugin import names_written, pytest_in

pytestmark = pytest.mark.root


def _tiny(base: str, **pod: object) -> dict:
    return {"name": base, "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1",
                                                                                            **pod}]}


def _written(artifacts, test: str) -> list:
    return sorted(artifacts.glob(f"test_case.py--{test}-*/*"))


def test_a_test_whose_setup_fails_after_its_lab_writes_the_lab_and_the_lab_goes_down(tmp_path):
    artifacts = tmp_path / "artifacts"
    bad = _tiny(unique_lab("pl"), containers=[{"name": "bad", "command": ["/nonexistent"]}])
    proc = pytest_in(tmp_path, f'''
import pytest

@pytest.fixture
def after_the_lab(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    raise RuntimeError("a fixture after the lab's fails")

@pytest.fixture
def own_lab(netlab_factory):
    lab = netlab_factory({_tiny(unique_lab("pl"))!r})
    open("name-2", "w").write(lab.name)
    assert lab.reach("a", "b", "icmp").reachable
    raise RuntimeError("a fixture that brought its lab up fails")

@pytest.mark.netlab({_tiny(unique_lab("pl"))!r})
def test_after(after_the_lab):
    pass

def test_own(own_lab):
    pass

@pytest.mark.netlab({bad!r})
def test_bad_container(netlab_lab):
    pass

@pytest.mark.netlab({_tiny(unique_lab("pl"))!r})
def test_passes(netlab_lab):
    open("name-3", "w").write(netlab_lab.name)
''', "--netlab-artifacts", str(artifacts))
    out = proc.stdout + proc.stderr
    names = names_written(tmp_path)
    assert proc.returncode == 1 and "1 passed, 3 errors" in out, out
    (after,) = _written(artifacts, "test_after")
    assert json.loads((after / "probe.json").read_text())["ok"] is True, out  # read while it was up
    assert {p.stem for p in (after / "inspect").glob("*.json")} == {"n1", "a", "b", "underlay"}
    (own,) = _written(artifacts, "test_own")
    assert [r["destination"] for r in json.loads((own / "reaches.json").read_text())] == ["b"]
    assert json.loads((own / "status.json").read_text())["ok"] is True
    (container,) = _written(artifacts, "test_bad_container")  # read before the fixture took it down
    assert container.name.startswith(bad["name"]) and not (container / "error.txt").exists()
    status = json.loads((container / "status.json").read_text())
    assert status["ok"] is False and "/nonexistent" in json.dumps(status), status
    assert _written(artifacts, "test_passes") == []
    assert out.count("the lab as it was when the test failed: ") == 3, out
    for name in [*names, bad["name"]]:
        assert lab_namespaces(name) == []


def test_a_setup_failure_with_netlab_keep_keeps_the_lab_and_says_so(tmp_path):
    artifacts = tmp_path / "artifacts"
    proc = pytest_in(tmp_path, f'''
import pytest

@pytest.fixture
def after_the_lab(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    raise RuntimeError("a fixture after the lab's fails")

@pytest.mark.netlab({_tiny(unique_lab("pl"))!r})
def test_after(after_the_lab):
    pass
''', "--netlab-artifacts", str(artifacts), "--netlab-keep")
    out = proc.stdout + proc.stderr
    (name,) = names_written(tmp_path)
    try:
        assert proc.returncode == 1 and "1 error" in out, out
        assert len(_written(artifacts, "test_after")) == 1, out
        summary = out.split("netlab: labs kept up (--netlab-keep)", 1)[1]
        assert f"lab {name} stays up: " in summary, out
        assert lab_namespaces(name), "the lab stays up"
    finally:
        netlab("down", "--lab", name, check=False)
    assert lab_namespaces(name) == []


def test_a_teardown_failure_writes_the_labs_still_up_once(tmp_path):
    artifacts = tmp_path / "artifacts"
    proc = pytest_in(tmp_path, f'''
import pytest

pytestmark = pytest.mark.netlab({_tiny(unique_lab("pl"))!r}, scope="module")

@pytest.fixture
def checked_after(netlab_lab):
    open("name-1", "w").write(netlab_lab.name)
    yield netlab_lab
    assert netlab_lab.reach("a", "b", "tcp", port=9).reachable, "checked as the test ends"

def test_teardown_fails(checked_after):
    pass

def test_call_and_teardown_fail(checked_after):
    assert False, "on purpose"
''', "--netlab-artifacts", str(artifacts))
    out = proc.stdout + proc.stderr
    (name,) = names_written(tmp_path)
    assert proc.returncode == 1 and "1 failed, 1 passed, 2 errors" in out, out  # a call that passed, then
    (teardown,) = _written(artifacts, "test_teardown_fails")
    assert json.loads((teardown / "probe.json").read_text())["ok"] is True, out  # the module's lab, still up
    reaches = json.loads((teardown / "reaches.json").read_text())
    assert [(r["destination"], r["port"]) for r in reaches] == [("b", 9)], reaches
    (call,) = _written(artifacts, "test_call_and_teardown_fail")
    assert json.loads((call / "reaches.json").read_text()) == []  # written once, as the call failed
    assert out.count("the lab as it was when the test failed: ") == 2, out
    assert lab_namespaces(name) == []
