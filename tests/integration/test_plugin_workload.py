"""The pytest plugin's fixtures and a lab whose container could not start (root; pytest runs a test file).

`netlab up` leaves such a lab up, names the container and exits 1; the fixtures handed the lab to the test as
if it were whole, and the test ran against a workload that was not the one asked for. Now ``netlab_lab`` and
``netlab_factory`` fail with up's line for the container, as an up error is reported (``netlab_lab`` at the
test's setup, the factory where the test calls it), and the lab goes down: the test body never goes on with it,
and no namespace or state of the lab is left (the kernel's list).
"""

from __future__ import annotations

import os

import pytest

from helpers import lab_namespaces, unique_lab
from test_pytest_plugin import pytest_in

pytestmark = pytest.mark.root


def test_a_container_that_could_not_start_errors_the_fixture_at_setup_and_the_lab_goes_down(tmp_path):
    base = unique_lab("qv")
    topo = {"name": base, "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1"},
                     {"name": "b", "node": "n1", "containers": [{"name": "bad", "command": ["/nonexistent"]},
                                                                 {"name": "ok", "command": ["sleep", "600"]}]}]}
    proc = pytest_in(tmp_path, f'''
import pytest

@pytest.mark.netlab({topo!r})
def test_marked(netlab_lab):
    open("ran-marked", "w").write(netlab_lab.name)

@pytest.mark.netlab({topo!r}, scope="module")
def test_shared(netlab_lab):
    open("ran-shared", "w").write(netlab_lab.name)

def test_factory(netlab_factory):
    lab = netlab_factory({topo!r})
    open("ran-factory", "w").write(lab.name)
''')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "1 failed, 2 errors" in out, out
    assert "ERROR at setup of test_marked" in out and "ERROR at setup of test_shared" in out, out
    line = "pod b container bad: could not start: /nonexistent: command not found (the lab is taken down)"
    said = [text for text in out.splitlines() if text.startswith(f"netlab: lab {base}-")]
    assert len(said) == 3 and all(text.endswith(f": {line}") for text in said), out
    assert "Traceback" not in out, out
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == [], out  # no test body ran
    assert lab_namespaces(base) == []  # <base>-<suffix>-<pod>: every lab went down
    assert not [d for d in os.listdir("/run/netlab") if d.startswith(base)] if os.path.isdir("/run/netlab") else True
