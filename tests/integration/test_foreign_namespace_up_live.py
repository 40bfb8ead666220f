"""A lab's state that lists a namespace netlab did not make (QA sec58 7: a root-edited state, a name collision),
which the plan no longer has: `up` leaves it alone (no netlab tag of the lab's in it) and says so, in one warning
line, without "removed" and without counting it among what it changed, since it touched nothing. Root, a real
namespace this test makes and removes."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from helpers import lab_namespaces, netlab, state_path

pytestmark = pytest.mark.root


def test_up_says_a_listed_namespace_it_did_not_make_is_left_alone_and_counts_no_change(labs):
    lab = f"seu{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    ns = f"{lab}-zz"
    path = os.path.join(state_path(lab), "state.json")
    with open(path) as f:
        state = json.load(f)
    state["netns"][ns] = "created"  # edited by hand: the lab never made it
    with open(path, "w") as f:
        json.dump(state, f)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        up = netlab("up", "--lab", lab)
        assert up.stdout.splitlines()[0] == f"lab {lab} is up and matches its topology; nothing to change", up.stdout
        assert "removed" not in up.stdout, up.stdout
        assert up.stderr.splitlines() == [f"netlab: warning: {ns} holds a network namespace that is not the lab's: "
                                          "left alone (the lab no longer lists it)"], up.stderr
        assert os.path.exists(f"/run/netns/{ns}")
        doc = json.loads(netlab("up", "--lab", lab, "-o", "json").stdout)
        assert ns not in json.dumps(doc), doc  # no longer the lab's: a second up has nothing to say of it
        assert netlab("status", "--lab", lab).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)  # ours: made above
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
