"""A removed pod whose CNI DEL failed while its namespace was there, DELed again by the next `up` once that namespace
is gone (root, Debian's bridge and host-local, then ``dlog``, a plugin the test writes into its tmp_path: it logs
each call's CNI_COMMAND and CNI_NETNS, passes its prevResult on at ADD and fails its DEL while told to).

The pod's record stays when its DEL fails (the next up runs DEL again), and up deletes the pod's namespace anyway.
The DEL run again handed the plugins the old path, /run/netns/L-b, where no namespace is mounted any more; containerd
hands an empty CNI_NETNS for a closed sandbox, as the CNI spec has a DEL tolerate a missing namespace. Now the
plugins get CNI_NETNS="", and still the DEL: host-local releases the pod's lease (its file in the lab's dataDir)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import netlab, state_path, write_topology

pytestmark = pytest.mark.root

DLOG = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
with open({log!r}, "a") as fh:
    fh.write(json.dumps([cmd, os.environ.get("CNI_NETNS")]) + "\\n")
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
elif cmd == "DEL" and os.path.exists({fail!r}):
    print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": "dlog DEL said no"}}))
    sys.exit(1)
"""


def topology(lab: str, b: bool) -> str:
    return (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n  - {name: a, node: n1, ip: 10.244.0.2}\n"
            + ("  - {name: b, node: n1, ip: 10.244.0.3}\n" if b else ""))


def calls(lab: str) -> list[dict]:
    return json.loads(netlab("cni", "log", "--lab", lab, "b", "-o", "json").stdout)["calls"]


def test_a_removed_pods_del_run_again_after_its_namespace_went_hands_an_empty_cni_netns(labs, tmp_path):
    log, fail = tmp_path / "dlog.jsonl", tmp_path / "fail"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "dlog").write_text(DLOG.format(log=str(log), fail=str(fail)))
    (tmp_path / "bin" / "dlog").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "cdnet", "plugins": [
        {"type": "bridge", "bridge": "cdbr0", "isGateway": True, "ipam": {"type": "host-local"},
         "capabilities": {"ips": True, "ipRanges": True}},
        {"type": "dlog"}]}))
    lab = labs.name("cd")
    path, _ = labs.up(topology(lab, True))
    leases = Path(state_path(lab, "cni", "networks", "n1", "cdnet"))
    assert (leases / "10.244.0.3").exists()
    fail.write_text("")
    write_topology(tmp_path, topology(lab, False))
    first = netlab("up", "-t", path)  # b's DEL fails: its record stays, its namespace goes
    assert "CNI DEL of pod b: CNI plugin dlog DEL: failed (exit 1): dlog DEL said no [code 11]" in first.stderr, first
    assert f"{lab}-b" not in os.listdir("/run/netns") and (leases / "10.244.0.3").exists()
    fail.unlink()
    log.write_text("")
    seen = len(calls(lab))
    again = netlab("up", "-t", path)
    assert "ran the CNI DEL of removed pod b again: it succeeded" in again.stdout, again.stdout
    assert [call for call in map(json.loads, log.read_text().splitlines()) if call[0] == "DEL"] == [["DEL", ""]]
    # the DEL run again, the last plugin first: dlog, bridge (which runs host-local's), then the loopback network's
    assert [(c["plugin"], c["command"], c["env"]["CNI_NETNS"], c["exit_code"]) for c in calls(lab)[seen:]] == [
        ("dlog", "DEL", "", 0), ("bridge", "DEL", "", 0), ("loopback", "DEL", "", 0)]
    assert not (leases / "10.244.0.3").exists()  # host-local released b's address
    assert (leases / "10.244.0.2").exists()  # a keeps its own
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
