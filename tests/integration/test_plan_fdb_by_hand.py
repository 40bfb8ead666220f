"""plan's FDB command, typed by hand on a real lab whose entry points at a wrong VTEP, puts it right (root).

QA qf: plan printed Flannel's FDB entries as `bridge fdb append MAC dev flannel.1 dst IP self permanent`. For a
unicast MAC that has an entry the vxlan driver ignores an append (exit 0, nothing changes: it adds remotes to the
all-zeros or a multicast MAC only), so a learner copying plan's line to repair a wrong VTEP saw nothing change.
flanneld's AddFDB is netlink.NeighSet (NLM_F_CREATE|NLM_F_REPLACE), `bridge fdb replace`: plan prints that, and
the entry it leaves is the one `up` makes (checked with `bridge -j fdb`, status and a ping across the tunnel).
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from breaking import DEFAULT, shipped_lab
from helpers import in_netns, netlab
from netlab.breaks.changes import unused_underlay_ip
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with shipped_lab(tmp_path_factory, DEFAULT) as lab:
        yield lab


def entries(netns: str, mac: str) -> list[dict]:
    out = subprocess.run(["bridge", "-n", netns, "-j", "fdb", "show", "dev", "flannel.1"], capture_output=True,
                         text=True, check=True).stdout
    return [e for e in json.loads(out) if e["mac"] == mac]


def test_plans_fdb_line_typed_by_hand_moves_a_wrong_vtep_back_as_up_has_it(lab):
    name, path = lab
    model = running_lab(name).resolved()
    node, peer = model.nodes[0], model.nodes[1]
    here, there = model.pods_on(node.name)[0], model.pods_on(peer.name)[0]
    [line] = [x for x in netlab("plan", "-t", path).stdout.splitlines() if x.startswith(f"bridge -n {node.netns} ")]
    argv = shlex.split(line)
    assert argv[3] == "fdb" and argv[-4:] == ["dst", str(peer.ip), "self", "permanent"], line
    mac = argv[5]
    as_up = entries(node.netns, mac)
    assert [e["dst"] for e in as_up] == [str(peer.ip)]
    wrong = str(unused_underlay_ip(model))
    try:
        subprocess.run(["bridge", "-n", node.netns, "fdb", "replace", mac, "dev", "flannel.1", "dst", wrong, "self",
                        "permanent"], check=True)  # a stale VTEP, as a node that changed its IP leaves
        assert [e["dst"] for e in entries(node.netns, mac)] == [wrong]
        assert netlab("status", "--lab", name, check=False).returncode == 1
        subprocess.run(argv, check=True)  # plan's line, as a learner copies it
        assert entries(node.netns, mac) == as_up, line  # was: still dst <wrong> (`append` of a unicast MAC)
        netlab("status", "--lab", name)  # exit 0: the kernel as up leaves it
        assert in_netns(here.netns, "ping", "-c", "1", "-W", "2", str(there.ip)).returncode == 0
    finally:
        netlab("up", "-t", path)
    assert entries(node.netns, mac) == as_up
    assert argv[4] == "replace"  # what flanneld's NeighSet does
