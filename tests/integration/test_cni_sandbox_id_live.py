"""A pod whose network namespace was deleted by hand (the kubelet's SandboxChanged) is a new CNI sandbox (root, real
plugins: bridge and host-local, the reference chain's and a conflist's).

containerd stops the old sandbox with its own id, its DEL handing the plugins an empty CNI_NETNS once its namespace
is gone (StopPodSandbox), and ADDs the new sandbox with a new id. host-local's lease file, named by the address,
holds the sandbox's id: the old one's DEL releases it, the new one's ADD writes the new id. netlab gave the pod one
id for ever: the reference chain's pod was made again by netlab itself (no plugin ran), a conflist's was CHECKed in
the new namespace, then DELed with the new namespace's path and ADDed with the same id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import in_netns, ip, netlab, state_path

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
network: {{mode: vxlan, cni: {cni}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: a, node: n1}}
  - {{name: b, node: n1}}
"""
BRIDGE = {"type": "bridge", "bridge": "sbbr0", "isGateway": True, "isDefaultGateway": True, "mtu": 1450,
          "capabilities": {"ipRanges": True, "ips": True}, "ipam": {"type": "host-local"}}


def calls(lab: str, pod: str) -> list[tuple[str, str, str, str]]:
    data = json.loads(netlab("cni", "log", "--lab", lab, pod, "-o", "json").stdout)
    return [(c["plugin"], c["command"], c["env"]["CNI_CONTAINERID"], c["env"]["CNI_NETNS"]) for c in data["calls"]]


def lease(folder: Path, address: str) -> str:
    return (folder / address).read_text().split()[0]  # host-local: the sandbox's id, then the interface


@pytest.mark.parametrize("cni", ["reference", "conflist"])
def test_a_pod_whose_namespace_was_deleted_gets_a_new_sandbox_id_and_its_old_one_is_deleted(labs, tmp_path, cni):
    lab = labs.name("sb")
    if cni == "conflist":
        (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "sbnet",
                                                           "plugins": [BRIDGE]}))
    labs.up(TOPOLOGY.format(lab=lab, cni="reference" if cni == "reference" else "{conflist: net.conflist}"))
    leases = Path(state_path(lab, "cni", "networks", "n1", "cbr0" if cni == "reference" else "sbnet"))
    address = json.loads(netlab("inspect", "--lab", lab, "a", "--section", "cni", "-o", "json").stdout)[
        "cni"]["ips"][0]["address"].split("/")[0]
    old = calls(lab, "a")[0][2]
    b = calls(lab, "b")[0][2]
    assert old != b and lease(leases, address) == old

    ip("netns", "del", f"{lab}-a")
    seen = len(calls(lab, "a"))
    netlab("up", "--lab", lab)
    now = [c for c in calls(lab, "a")[seen:] if c[1] != "CHECK"]
    new = now[-1][2]
    netns = f"/run/netns/{lab}-a"
    # the old sandbox's DEL with its own id and no namespace, then the new sandbox's ADD with a new id
    assert now == [("bridge", "DEL", old, ""), ("loopback", "DEL", old, ""),
                   ("loopback", "ADD", new, netns), ("bridge", "ADD", new, netns)]
    assert new != old and len(new) == 64
    assert lease(leases, address) == new  # the old lease released, the address leased to the new sandbox
    assert not any(old in (leases / f).read_text() for f in os.listdir(leases) if f[0].isdigit())
    results = os.listdir(state_path(lab, "cni", "results"))  # the cached results follow the id
    assert not any(old in r for r in results) and sum(new in r for r in results) == 2
    assert all(c[2] == b for c in calls(lab, "b"))  # the other pod keeps its sandbox
    netlab("status", "--lab", lab)  # exit 0: the plan and every plugin's CHECK agree
    assert in_netns(f"{lab}-a", "ping", "-c1", "-W2", "10.244.0.1").returncode == 0
