"""A module's shared lab comes up and goes down while its test process holds the machine's neighbour table
(tests/machine_table.py), as every root test's own labs do: a test that holds the table alone (its ARP counters
asserted) sees no other worker's module lab come up or go down meanwhile. The module fixtures came up before the
test's own hold and went down after it: outside it.

Two processes: this test holds the table alone; a pytest run of this suite's integration conftest (its own run,
its own lock in its own temporary folder) starts a test whose module fixture brings a lab up. That run waits for
the table before the lab comes up, and its module fixture's teardown finds its process holding the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import machine_table
from helpers import lab_namespaces, unique_lab

pytestmark = pytest.mark.root

TESTS = Path(__file__).resolve().parents[1]

# A plugin of the inner run: once it has collected, its temporary folder (where its lock lives) exists; it says
# where, then waits for this test to hold the lock there alone (two pipes: a dead peer reads end of file).
SYNC = '''
import os

def pytest_collection_finish(session):
    base = str(session.config._tmp_path_factory.getbasetemp())
    os.write(int(os.environ["LK_READY"]), base.encode())
    os.close(int(os.environ["LK_READY"]))
    assert os.read(int(os.environ["LK_GO"]), 2) == b"go"
'''

INNER = '''
import os

import pytest

import machine_table
from helpers import lab_namespaces, lab_up, write_topology

pytestmark = pytest.mark.root
LAB = {lab!r}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    path = write_topology(tmp_path_factory.mktemp("lab"), {topology!r})
    with lab_up(path, LAB):
        yield LAB
        folder = str(tmp_path_factory.getbasetemp())
        assert machine_table.holds(folder, os.getpid()), "the module's lab goes down outside the table's lock"


def test_reads_the_shared_lab(lab):
    assert lab_namespaces(lab)
'''


def waits(proc: subprocess.Popen, folder: str) -> bool:
    """True once ``proc`` waits for the table in ``folder``; False if it ends first."""
    while not machine_table.waits_for(folder, proc.pid):
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            continue
        return False
    return True


def test_a_module_lab_comes_up_and_goes_down_inside_its_processs_hold_of_the_table(tmp_path):
    lab = unique_lab("lk")
    topology = json.dumps({"name": lab, "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]})
    (tmp_path / "lk_sync.py").write_text(SYNC)
    (tmp_path / "test_case.py").write_text(INNER.format(lab=lab, topology=topology))
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    # The suite's integration conftest as a plugin of the inner run (its hooks and fixtures, as the suite's tests
    # get them); tests/ for machine_table and helpers, the checkout for its netlab.
    paths = [TESTS / "integration", TESTS, TESTS.parent, tmp_path]
    env.update(PYTHONPATH=os.pathsep.join(map(str, paths)), LK_READY=str(ready_w), LK_GO=str(go_r))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-p", "lk_sync", "-q",
            "-o", "markers=root", f"--basetemp={tmp_path / 'inner'}", str(tmp_path / "test_case.py")]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, pass_fds=(ready_w, go_r), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    os.close(ready_w)
    os.close(go_r)
    try:
        with os.fdopen(ready_r, "rb") as ready:
            folder = ready.read().decode()
        assert folder, "the inner run ended before it collected"
        with machine_table.hold(exclusive=True, folder=folder):
            os.write(go_w, b"go")
            waited = waits(proc, folder)
            up_meanwhile = lab_namespaces(lab)
    finally:
        os.close(go_w)
        out, err = proc.communicate(timeout=600)
    assert waited, f"the inner run ended without waiting for the table:\n{out}\n{err}"
    assert up_meanwhile == [], f"the module's lab came up while another test held the table alone: {up_meanwhile}"
    assert proc.returncode == 0, out + err
    assert "1 passed" in out, out
    assert lab_namespaces(lab) == []
