"""netlab break again on a real lab after a user put back one step of the fault by hand (root).

vxlan-fdb-wrong-vtep is two steps: the planned FDB entry of the peer's VTEP MAC deleted, one to an underlay
address where no node is added. With the wrong entry deleted by hand (the planned one still gone) a second
break applied both again: the kernel refused the delete of the planned entry (ENOENT), exit 4 "apply failed ...
broken already?". forward-policy-drop (FORWARD policy DROP, the FLANNEL-FWD jump deleted) with the policy set
back to ACCEPT by hand: the restore's -D of the gone jump failed, exit 4. Now each break adds what is missing
only, exits 0 and says what it added and what was in place; `up` repairs.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from breaking import assert_as_planned
from helpers import in_netns, lab_up, netlab, two_node_topology, unique_lab, write_topology, up_here
from netlab.breaks import catalogue
from netlab.breaks.changes import FLANNEL_FWD_JUMP, peer_node, unused_underlay_ip
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The built-in lab's two nodes, a pod on each (a pod at each end of the tunnel is all a test reaches with)."""
    name = unique_lab("bk")
    path = write_topology(tmp_path_factory.mktemp(name), two_node_topology(name, pods_per_node=1))
    with lab_up(path, name):
        yield name, path


def fdb_of(netns: str, mac: str) -> list[str]:
    """The remotes `bridge -j fdb show` lists for ``mac`` on flannel.1."""
    out = subprocess.run(["bridge", "-n", netns, "-j", "fdb", "show", "dev", "flannel.1"], capture_output=True,
                         text=True, check=True).stdout
    return [e.get("dst") for e in json.loads(out) if e["mac"] == mac]


def reaches(src_netns: str, ip: str) -> bool:
    return in_netns(src_netns, "ping", "-c", "1", "-W", "1", ip).returncode == 0


def test_fdb_wrong_vtep_with_the_wrong_entry_deleted_by_hand_adds_it_back_only(lab):
    name, path = lab
    model = running_lab(name).resolved()
    s = catalogue.scenario("vxlan-fdb-wrong-vtep")
    node = catalogue.resolve_target(s, model, None)
    peer = peer_node(model, node)
    wrong = str(unused_underlay_ip(model))
    here, there = model.pods_on(node.name)[0], model.pods_on(peer.name)[0]
    mac = next(link["address"] for link in json.loads(subprocess.run(
        ["ip", "-n", peer.netns, "-j", "link", "show", "flannel.1"], capture_output=True, text=True,
        check=True).stdout))
    try:
        first = json.loads(netlab("break", "vxlan-fdb-wrong-vtep", "--lab", name, "-o", "json").stdout)
        assert len(first["changes"]) == 2
        assert fdb_of(node.netns, mac) == [wrong]
        subprocess.run(["bridge", "-n", node.netns, "fdb", "del", mac, "dev", "flannel.1", "dst", wrong, "self"],
                       check=True)  # the user's half repair: the wrong entry gone, the planned one not back
        assert fdb_of(node.netns, mac) == []
        again = netlab("break", "vxlan-fdb-wrong-vtep", "--lab", name, check=False)
        assert again.returncode == 0, again.stderr  # was 4: "del fdb ...: No such file or directory"
        assert f"broke vxlan-fdb-wrong-vtep on node {node.name} again, in part" in again.stdout
        assert f"  added: bridge -n {node.netns} fdb replace {mac} dev flannel.1 dst {wrong} self permanent" \
            in again.stdout.splitlines()
        assert f"  in place already: bridge -n {node.netns} fdb del {mac} dev flannel.1 dst {peer.ip} self" \
            in again.stdout.splitlines()
        assert fdb_of(node.netns, mac) == [wrong]
        assert not reaches(here.netns, str(there.ip))  # the fault is whole again: the tunnel goes nowhere
        whole = json.loads(netlab("break", "vxlan-fdb-wrong-vtep", "--lab", name, "-o", "json").stdout)
        assert whole["already"] is True and whole["changes"] == [] and whole["in_place"] == []
    finally:
        up_here(path)
    assert fdb_of(node.netns, mac) == [str(peer.ip)]
    assert reaches(here.netns, str(there.ip))
    assert_as_planned(name, "up")


def test_forward_policy_drop_with_the_policy_set_back_by_hand_sets_it_again_only(lab):
    name, path = lab
    model = running_lab(name).resolved()
    node = catalogue.resolve_target(catalogue.scenario("forward-policy-drop"), model, None)
    jump = FLANNEL_FWD_JUMP

    def forward() -> tuple[str, bool]:
        saved = in_netns(node.netns, "iptables-save", "-t", "filter", check=True).stdout.splitlines()
        policy = next(line.split()[1] for line in saved if line.startswith(":FORWARD "))
        return policy, jump in saved

    try:
        first = netlab("break", "forward-policy-drop", "--lab", name)  # on a lab as planned: a plain "broke"
        assert f"broke forward-policy-drop on node {node.name}: " in first.stdout, first.stdout  # was "again, in part"
        assert "in place already" not in first.stdout, first.stdout  # was an empty "in place already:" line
        assert forward() == ("DROP", False)
        in_netns(node.netns, "iptables", "-P", "FORWARD", "ACCEPT", check=True)  # half repaired by hand
        again = json.loads(netlab("break", "forward-policy-drop", "--lab", name, "-o", "json").stdout)
        assert again["already"] is False  # was exit 4: the restore's -D of a rule that is gone
        assert again["changes"] == [f"ip netns exec {node.netns} iptables -t filter -P FORWARD DROP"]
        assert again["in_place"] == [f"ip netns exec {node.netns} iptables -t filter -D{jump[2:]}"]
        assert forward() == ("DROP", False)
    finally:
        up_here(path)
    assert forward() == ("ACCEPT", True)
    assert_as_planned(name, "up")
