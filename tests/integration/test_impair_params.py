"""A tbf's parameters changed behind netlab's back, in a real lab: status compared only the rate, so a burst or
a latency changed with `tc qdisc change` was "all as planned" and `up` left it (a 99999-byte burst let a
"10mbit" pod send ~48 Mbit/s for a while). Checked with the kernel's own view, `tc -j qdisc show`."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import lab_down, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def root_tbf(netns: str) -> dict:
    out = json.loads(subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", "eth0"],
                                    capture_output=True, text=True, check=True).stdout)
    (root,) = [q for q in out if q.get("root")]
    assert root["kind"] == "tbf"
    return root["options"]


def test_a_burst_or_latency_changed_by_hand_is_drift_and_up_restores_it(tmp_path):
    name = unique_lab("qg")
    path = write_topology(tmp_path, f"name: {name}\nnodes:\n  - name: n1\npods:\n  - name: a\n    node: n1\n"
                                    "    impair:\n      eth0: {rate: 10Mbit}\n")  # tc's spelling
    ns = f"{name}-a"
    with lab_up(path, name):
        planned = root_tbf(ns)
        assert (planned["rate"], planned["burst"], planned["lat"]) == (1_250_000, 12_500, 50_000)
        for change, words in ((["burst", "99999", "latency", "50ms"], "burst 99999b limit 162499b"),
                              (["burst", "12500", "latency", "5s"], "limit 6262500b")):
            subprocess.run(["tc", "-n", ns, "qdisc", "change", "dev", "eth0", "root", "handle", "1:", "tbf", "rate",
                            "10mbit", *change], check=True)
            assert root_tbf(ns) != planned
            drift = netlab("status", "--lab", name, check=False)
            assert drift.returncode == 1, drift.stdout
            assert f"impair: eth0 in {ns} has rate 10mbit {words}, the topology says rate 10mbit" in drift.stdout
            fixed = netlab("up", "-t", path)
            assert f"set rate 10mbit on eth0 in {ns} (it had rate 10mbit {words})" in fixed.stdout
            assert root_tbf(ns) == planned
            assert netlab("status", "--lab", name).returncode == 0


def test_a_rate_of_no_whole_bytes_is_as_planned_after_up_and_after_impair(tmp_path):
    """The kernel keeps a rate in whole bytes a second: 10.3kbit is 1287 bytes (10296bit). netlab computed the
    token bucket from 1287.5 and compared it with one computed from 1287, so a fresh lab already drifted ("has
    rate 10296bit burst 3199b") and `up` set it again forever; `impair --rate 333333bit` alike."""
    name = unique_lab("im")
    path = write_topology(tmp_path, f"name: {name}\nnodes:\n  - name: n1\npods:\n  - name: a\n    node: n1\n"
                                    "    impair:\n      eth0: {rate: 10.3kbit}\n")
    ns = f"{name}-a"
    with lab_up(path, name):
        tbf = root_tbf(ns)
        assert (tbf["rate"], tbf["burst"]) == (1287, 3199)
        status = netlab("status", "--lab", name, check=False)
        assert status.returncode == 0, status.stdout
        again = netlab("up", "-t", path)
        assert "set rate" not in again.stdout, again.stdout
        assert root_tbf(ns) == tbf
        netlab("impair", "--lab", name, "a:eth0", "--rate", "333333bit")
        assert root_tbf(ns)["rate"] == 41666
        status = netlab("status", "--lab", name, check=False)
        assert status.returncode == 0, status.stdout
        again = netlab("up", "--lab", name)
        assert "set rate" not in again.stdout, again.stdout


def test_a_new_lab_s_planned_impairment_is_part_of_making_it_not_a_repair(tmp_path):
    """`up -t` of a new lab with a rate said "... 1 object added, changed or repaired", and -o json's `fixed` (the
    repairs, docs/json.md) held "set rate 10mbit on eth0 ... (it had none)". A pod added later with an impairment is
    made whole too; an impairment added to a running pod is a change, said as one."""
    name = unique_lab("im")
    text = (f"name: {name}\nnodes:\n  - name: n1\npods:\n  - name: a\n    node: n1\n"
            "    impair:\n      eth0: {rate: 10mbit}\n")
    path = write_topology(tmp_path, text)
    try:
        out = json.loads(netlab("up", "-t", path, "-o", "json").stdout)
        assert not [line for line in out["fixed"] if "rate" in line], out["fixed"]
        assert root_tbf(f"{name}-a")["rate"] == 1_250_000  # set all the same
        more = text + "  - name: b\n    node: n1\n    impair:\n      eth0: {rate: 20mbit}\n"
        write_topology(tmp_path, more.replace("    impair:\n      eth0: {rate: 10mbit}\n", "", 1))
        said = netlab("up", "-t", path).stdout
        assert "set rate 20mbit" not in said and "removed rate 10mbit from eth0" in said, said
        write_topology(tmp_path, more)
        said = netlab("up", "-t", path).stdout
        assert f"set rate 10mbit on eth0 in {name}-a (it had none)" in said, said
        assert netlab("status", "--lab", name).returncode == 0
    finally:
        lab_down(name)
