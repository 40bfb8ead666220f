"""A pod its CNI plugins attached, moved to another node in the file (root; Debian's bridge + host-local; QA q21 #2).

Each node's config has host-local's leases in the node's own folder, and the pod's recorded networks were compared
with the config for its new node: a plain `up` said the conflist changed (it had not) and pointed to --reconfigure,
which then said the move; `status -t` said both. Now `up` says the README's two steps, and nothing changed in the
kernel; `status -t` has no conflist line, and says the move as drift (exit 1, once: QA q24 #2); the conflist
edited too: one line says both (up's and status's), its first step --reconfigure; no CHECK of b on n1 and no repair
named that up refuses (QA q29 #2); the two steps then move the pod (its eth0 in n1's range, checked with `ip -j`).
"""

from __future__ import annotations

import json

import pytest

from helpers import ipv4_of, netlab, write_topology
from test_cni import BASH
from test_cni_hostport import CONFLIST
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

B_ON_N2 = "  - {name: b, node: n2}\n"


def topology(lab: str, b: str = B_ON_N2) -> str:
    return (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: hp.conflist}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
            "pods:\n  - {name: a, node: n1}\n" + b)


def move(lab: str, path: str) -> str:
    return (f"netlab: lab {lab}: pod b moves from node n2 to n1, and its CNI plugins attached it on n2{{}}: take the "
            f"pod out of the file and {{}} (its plugins' DEL runs), then put it back on n1 and `up` again\n")


def test_a_moved_pod_is_said_a_move_and_the_two_steps_move_it(labs, tmp_path):
    conflist = tmp_path / "hp.conflist"
    conflist.write_text(json.dumps(CONFLIST))
    lab = labs.name("mv2")
    path, _ = labs.up(topology(lab))
    b_was = ipv4_of(f"{lab}-b", "eth0")
    assert b_was.startswith("10.244.1."), b_was

    write_topology(tmp_path, topology(lab, "  - {name: b, node: n1}\n"))
    refused = netlab("up", "-t", path, check=False)
    assert refused.returncode == 2 and refused.stderr == move(lab, path).format("", "`up`"), refused.stderr
    assert ipv4_of(f"{lab}-b", "eth0") == b_was  # nothing changed
    # status -t: the move is drift (exit 1), said once, in the refusal's words: `status -t F || up -t F` runs the
    # up that says the two steps. It said all as planned (exit 0, ok true) with a warning only (QA q24 #2).
    line = "cni: " + move(lab, path).format("", "`up`").removeprefix(f"netlab: lab {lab}: ").rstrip("\n")
    status = netlab("status", "-t", path, check=False)
    assert status.returncode == 1 and f"  {line}\n" in status.stdout, status
    assert "cni: conflist" not in status.stdout and "outside node" not in status.stdout, status.stdout
    # No CHECK of b on n1, the file's node: its veth is on n2, where the bridge plugin attached it (a false
    # "CHECK of pod b failed" line), and no repair `up` refuses (it named `up -t FILE --reconfigure`: QA q29 #2)
    assert "CHECK" not in status.stdout and "run `" not in status.stdout, status.stdout
    assert status.stdout.endswith(f"`{netlab_command(f'up -t {path}')}` refuses the file (exit 2) while it moves a pod its "
                                  "CNI plugins attached: the two steps its cni: line says apply it\n"), status.stdout
    assert "moves from node" not in status.stderr, status.stderr  # said once
    as_json = netlab("status", "-t", path, "-o", "json", check=False)
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and report["ok"] is False and report["drift"] == [line], report
    assert report["repair"] is None and report["kept"] == [line], report
    assert not [w for w in report["warnings"] if "moves from node" in w], report["warnings"]
    assert ipv4_of(f"{lab}-b", "eth0") == b_was  # status changed nothing

    conflist.write_text(json.dumps({**CONFLIST, "plugins": [{**CONFLIST["plugins"][0], "mtu": 1400},
                                                            CONFLIST["plugins"][1]]}))
    refused = netlab("up", "-t", path, check=False)
    assert refused.returncode == 2 and refused.stderr == move(lab, path).format(
        f"; and conflist {conflist} changed since pods a, b were attached with it",
        f"`{netlab_command(f'up -t {path} --reconfigure')}`"), refused.stderr
    report = json.loads(netlab("status", "-t", path, "-o", "json", check=False).stdout)
    assert report["drift"] == ["cni: " + move(lab, path).format(
        f"; and conflist {conflist} changed since pods a, b were attached with it",
        f"`{netlab_command(f'up -t {path} --reconfigure')}`").removeprefix(f"netlab: lab {lab}: ").rstrip("\n")], report
    # Its first step's `up -t FILE --reconfigure` (the pod out of the file) is accepted, but not of this file
    assert report["repair"] is None, report
    assert netlab("up", "-t", path, "--reconfigure", check=False).returncode == 2

    # The two steps it names: b out of the file and up --reconfigure (a re-attached with the new config), then b
    # back on n1 and up.
    write_topology(tmp_path, topology(lab, ""))
    netlab("up", "-t", path, "--reconfigure")
    write_topology(tmp_path, topology(lab, "  - {name: b, node: n1}\n"))
    netlab("up", "-t", path)
    assert ipv4_of(f"{lab}-b", "eth0").startswith("10.244.0."), ipv4_of(f"{lab}-b", "eth0")
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")


def test_the_bash_bridge_examples_moved_pod_is_said_once_with_no_check_on_its_new_node(labs, tmp_path):
    # QA q29 #2's case: examples/cni/bash-bridge cut to 2 pods, web-2 moved to node-1 in the file. Its CHECK ran
    # against node-1, where bash-bridge never made its veth ("cni: CHECK of pod web-2 failed: ... vb... is missing
    # in the node, or not a port of bashbr0"), and the repair named `up -t FILE --reconfigure`, which exits 2.
    lab = labs.name("mv2")
    text = (BASH / "topology.yaml").read_text().replace("name: bashcni", f"name: {lab}")
    text = text.replace("./bash-bridge.conflist", str(BASH / "bash-bridge.conflist")).replace(
        "binDir: .", f"binDir: {BASH}").replace("  - {name: web-3, node: node-1}\n", "")
    path, _ = labs.up(text)
    moved = write_topology(tmp_path, text.replace("{name: web-2, node: node-2}", "{name: web-2, node: node-1}"),
                           "t4.yaml")
    status = netlab("status", "-t", moved, check=False)
    line = ("cni: pod web-2 moves from node node-2 to node-1, and its CNI plugins attached it on node-2: take the "
            "pod out of the file and `up` (its plugins' DEL runs), then put it back on node-1 and `up` again")
    assert status.returncode == 1 and f"  {line}\n" in status.stdout, status
    assert "CHECK" not in status.stdout and "run `" not in status.stdout, status.stdout
    report = json.loads(netlab("status", "-t", moved, "-o", "json", check=False).stdout)
    assert report["drift"] == [line] and report["repair"] is None and report["kept"] == [line], report
    assert netlab("up", "-t", moved, "--reconfigure", check=False).returncode == 2  # what it named
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")  # web-2 is fine on node-2
    assert ipv4_of(f"{lab}-web-2", "eth0").startswith("10.244.1.")
