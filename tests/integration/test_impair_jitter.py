"""`delay: 0ms` with a jitter on a real lab (root): a netem is what it asks for (tc's `netem delay 0ms 10ms`).

It passed validation while the plan dropped it (no qdisc, `status` drift that `up` never repaired). Where the
kernel lacks sch_netem (as this suite's machine may) `up` and `netlab impair` refuse it before any change, exit
3, with the doctor's line and the interface that asks for it; where it has netem, the root qdisc is a netem with
that jitter and `status` is clean (tc -j).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import lab_down, lab_namespaces, lab_up, netlab, unique_lab, write_topology
from netlab import doctor
from netlab.model.lab import resolve
from netlab.model.topology import Topology

pytestmark = pytest.mark.root


def topology(name: str, impair: str = "") -> str:
    return f"name: {name}\nnodes:\n  - name: n1\npods:\n  - name: p\n    node: n1\n{impair}"


JITTER = "    impair:\n      eth0: {delay: 0ms, jitter: 10ms}\n"


def netem_check() -> doctor.Check:
    lab = resolve(Topology.model_validate({"name": "x", "nodes": [{"name": "n"}], "pods": [
        {"name": "p", "node": "n", "impair": {"eth0": {"delay": "0ms", "jitter": "10ms"}}}]}))
    (check,) = doctor.diagnose(lab, doctor.needs(lab), ["netem"])
    return check


def root_qdisc(netns: str) -> dict:
    shown = json.loads(subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", "eth0"],
                                      capture_output=True, text=True, check=True).stdout)
    return next(q for q in shown if q.get("root"))


def test_up_of_a_jitter_round_no_delay_sets_netem_or_says_the_kernel_lacks_it(tmp_path):
    name = unique_lab("bk")
    path = write_topology(tmp_path, topology(name, JITTER))
    check = netem_check()
    if check.status != doctor.OK:
        proc = netlab("up", "-t", path, check=False)
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.strip() == f"netlab: {check.line()}; asked for by p:eth0 delay 0ms jitter 10ms: without " \
            "netem, leave out delay and jitter (rate and loss need no netem)"
        assert not lab_namespaces(name)  # refused before any change
        return
    with lab_up(path, name):
        assert root_qdisc(f"{name}-p")["kind"] == "netem"
        netlab("status", "--lab", name)  # exit 0: the netem is as wanted


def test_impair_with_a_jitter_round_no_delay_sets_netem_or_says_the_kernel_lacks_it(tmp_path):
    name = unique_lab("bk")
    path = write_topology(tmp_path, topology(name))
    check = netem_check()
    try:
        netlab("up", "-t", path)
        proc = netlab("impair", "--lab", name, "p:eth0", "--delay", "0ms", "--jitter", "10ms", check=False)
        if check.status != doctor.OK:
            assert proc.returncode == 3 and proc.stderr.startswith(
                f"netlab: {check.line()}; asked for by p:eth0 delay 0ms jitter 10ms"), proc.stderr
            assert root_qdisc(f"{name}-p")["kind"] == "noqueue"  # nothing changed
        else:
            assert proc.returncode == 0, proc.stderr
            assert root_qdisc(f"{name}-p")["kind"] == "netem"
        netlab("status", "--lab", name)
    finally:
        lab_down(name)
