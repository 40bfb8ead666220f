"""A removed pod whose CNI DEL keeps failing keeps its address from new pods (root, Debian's bridge and host-local,
then ``dfail``, a plugin the test writes: it passes its prevResult on at ADD and fails its DEL while told to; QA
cnf63 #3).

While the removed pod's DEL fails, its record stays and host-local keeps its lease. The planner gave the next new
pod the lowest free address, the removed pod's, and every `up` failed ("requested IP address 10.244.0.3 is not
available in range set"). Now the address is held for the removed pod until its DEL succeeds: the new pod gets the
next one, and once the DEL passes the address is free again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ip_json, netlab, state_path, write_topology

pytestmark = pytest.mark.root

DFAIL = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
elif cmd == "DEL" and os.path.exists({fail!r}):
    print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": "dfail DEL said no"}}))
    sys.exit(1)
"""


def topology(lab: str, *pods: str) -> str:
    return (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n"
            + "".join(f"  - {{name: {p}, node: n1}}\n" for p in pods))


def test_a_new_pod_is_not_given_the_address_a_removed_pods_failing_del_keeps(labs, tmp_path):
    fail = tmp_path / "fail"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "dfail").write_text(DFAIL.format(fail=str(fail)))
    (tmp_path / "bin" / "dfail").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "cknet", "plugins": [
        {"type": "bridge", "bridge": "ckbr0", "isGateway": True, "ipam": {"type": "host-local"},
         "capabilities": {"ips": True, "ipRanges": True}},
        {"type": "dfail"}]}))
    lab = labs.name("cfkl")
    path, _ = labs.up(topology(lab, "a", "b"))
    leases = Path(state_path(lab, "cni", "networks", "n1", "cknet"))
    assert (leases / "10.244.0.3").exists()
    fail.write_text("")
    write_topology(tmp_path, topology(lab, "a"))
    first = netlab("up", "-t", path)  # b's DEL fails: its record and its lease stay
    assert "dfail DEL said no" in first.stderr and (leases / "10.244.0.3").exists(), first
    write_topology(tmp_path, topology(lab, "a", "c"))
    plan = netlab("plan", "-t", path, "-o", "json", check=False)
    assert plan.returncode == 0, plan.stderr
    added = netlab("up", "-t", path, check=False)
    assert added.returncode == 0, added.stderr
    [eth0] = ip_json("-4", "addr", "show", "eth0", netns=f"{lab}-c")
    assert [a["local"] for a in eth0["addr_info"]] == ["10.244.0.4"], eth0  # not b's 10.244.0.3
    assert (leases / "10.244.0.3").exists() and (leases / "10.244.0.4").exists()
    status = netlab("status", "--lab", lab, check=False)
    assert "taken out" not in status.stdout.replace("pod b was taken out", ""), status.stdout
    fail.unlink()
    again = netlab("up", "-t", path)
    assert "ran the CNI DEL of removed pod b again: it succeeded" in again.stdout, again.stdout
    assert not (leases / "10.244.0.3").exists()
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
