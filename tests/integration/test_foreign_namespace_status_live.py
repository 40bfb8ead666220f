"""A lab's namespace name held by a namespace netlab did not make (QA sec58 6: `ip netns del L-a; ip netns add
L-a`): `up` refuses the lab (exit 3, it never touches someone else's namespace), so `status` says the name is
taken, that its owner must remove it first, and names no `up` as the repair. Root, a real namespace this test
makes and removes."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from helpers import lab_namespaces, netlab

pytestmark = pytest.mark.root

WORDS = ("a namespace this lab did not make holds its name: up refuses the lab while it is there; whoever made it "
         "must remove it first (netlab leaves it alone)")


def test_status_says_a_foreign_namespace_holds_the_name_and_promises_no_up(labs):
    lab = f"sef{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    ns = f"{lab}-a"
    subprocess.run(["ip", "netns", "del", ns], check=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)  # someone else's, under the lab's name
    try:
        res = netlab("status", "--lab", lab, check=False)
        assert res.returncode == 1, res.stdout + res.stderr
        lines = res.stdout.splitlines()
        assert f"  different: namespace {ns} ({WORDS})" in lines, res.stdout
        assert not any("to repair" in line or "run `sudo netlab up" in line for line in lines), res.stdout
        assert lines[-1] == (f"no `up` repairs the lab while {ns} is someone else's (`up` refuses it, exit 3): "
                             "whoever made it must remove it first"), res.stdout
        doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
        assert doc["repair"] is None and not doc["ok"], doc
        up = netlab("up", "--lab", lab, check=False)
        assert up.returncode == 3 and "was not made by netlab" in up.stderr, up.stdout + up.stderr
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)  # ours: made above
    netlab("up", "--lab", lab)  # the name free again: up makes the pod's namespace anew
    assert netlab("status", "--lab", lab).returncode == 0
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
