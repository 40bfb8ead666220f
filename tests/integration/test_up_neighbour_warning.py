"""`up`'s neighbour-table warning is said once for a lab's size, not at every up (root, real namespaces).

A lab whose all-pairs traffic needs more neighbour entries than the machine's table holds gets a warning from `up`
(probe/neighbours.py). It came with every `up`, "nothing to change" ones too (qa62s); now a fresh up and an up that
changes the lab's size say it on stderr, and every up's -o json keeps it among its warnings.
"""

from __future__ import annotations

import json

import pytest

from helpers import netlab
from netlab.probe.neighbours import read_thresholds

pytestmark = pytest.mark.root

WARNING = "all-pairs traffic in lab"


def topology(lab: str, pods: int) -> str:
    lines = [f"name: {lab}", "nodes: [{name: n1}]", "pods:"] + [f"  - {{name: p{i}, node: n1}}" for i in range(pods)]
    return "\n".join(lines) + "\n"


def said(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if WARNING in line]


def test_the_neighbour_warning_comes_with_a_fresh_up_and_a_size_change_only(labs):
    pods = 33  # 33 * 32 + 66 + 0 entries: past gc_thresh3 = 1024 less the machine's margin
    if read_thresholds()["gc_thresh3"] > 1024:
        pytest.skip("the machine's gc_thresh3 is above 1024: a 33-pod lab gets no warning")
    lab = labs.name("nw")
    path, first = labs.up(topology(lab, pods))
    assert len(said(first.stderr)) == 1, first.stderr  # fresh
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout and not said(again.stderr), again.stdout + again.stderr
    as_json = netlab("up", "-t", path, "-o", "json")
    assert [w for w in json.loads(as_json.stdout)["warnings"] if WARNING in w] and not said(as_json.stderr)
    path, bigger = labs.up(topology(lab, pods + 1))  # the lab's size changed: said again, with its new figure
    assert len(said(bigger.stderr)) == 1 and f"({pods + 1} pods share" in said(bigger.stderr)[0], bigger.stderr
