"""What a CNI chain keeps on a node after a pod's ADD failed or its DEL failed (root, Debian's bridge, host-local and
loopback behind tiny plugins the test writes into its tmp_path).

The chain is ``qcw`` (execs Debian's bridge, which makes the bridge ``qcbr0`` with host-local's lease), then ``qcf``
(passes the previous result on, or fails where a mode file says). Checked with the kernel's view (``ip -j``),
host-local's dataDir files and real traffic (``netlab probe``):

* a new pod, the first on its node, whose ADD fails after bridge made ``qcbr0``: the bridge stays the plugin's (never
  "extra" to status, never deleted by up), the DEL that followed took the pod's lease; the node's last pod removed
  leaves its bridge the plugin's too;
* a removed pod whose DEL fails: up warns naming pod and plugin and what may be left, the record stays, and the next
  up runs DEL again (containerd keeps a sandbox whose network teardown failed and the kubelet retries it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import ip_json, lab_namespaces, netlab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"

QCW = """#!/bin/sh
mode=" $(cat {dir}/mode 2>/dev/null) "
pod=$(echo "$CNI_ARGS" | tr ';' '\\n' | sed -n 's/^K8S_POD_NAME=//p')
case "$mode" in *" qcw:$CNI_COMMAND:$pod "*)
  cat >/dev/null; echo '{{"cniVersion": "1.0.0", "code": 11, "msg": "qcw said no"}}'; exit 1;; esac
exec {bin}/bridge
"""

QCF = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
pod = dict(kv.split("=", 1) for kv in os.environ.get("CNI_ARGS", "").split(";") if "=" in kv).get("K8S_POD_NAME")
mode = " " + (open({mode!r}).read() if os.path.exists({mode!r}) else "") + " "
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif f" qcf:{{cmd}}:{{pod}} " in mode:
    print(json.dumps({{"cniVersion": "1.0.0", "code": 7, "msg": "qcf said no"}}))
    sys.exit(1)
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "cnkd", "plugins": [
    {"type": "qcw", "bridge": "qcbr0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ipRanges": True}}, {"type": "qcf"}]}


@pytest.fixture(autouse=True)
def plugins_installed():
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"


def _topology(lab: str, pods: dict[str, str]) -> str:
    return f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n" \
           "nodes: [{name: n1}, {name: n2}]\n" + ("pods:\n" if pods else "pods: []\n") + \
           "".join(f"  - {{name: {p}, node: {n}}}\n" for p, n in pods.items())


def _lab(labs, tmp_path: Path, pods: dict[str, str]):
    lab = labs.name("cx")
    (tmp_path / "bin").mkdir()
    for name, text in (("qcw", QCW.format(dir=tmp_path, bin=CNI_BIN)), ("qcf", QCF.format(mode=str(tmp_path / "mode")))):
        (tmp_path / "bin" / name).write_text(text)
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    path, _ = labs.up(_topology(lab, pods))
    return lab, path


def _up(path: str, lab: str, pods: dict[str, str], check: bool = True):
    Path(path).write_text(_topology(lab, pods))
    return netlab("up", "-t", path, check=check)


def _bridges(lab: str, node: str) -> list[str]:
    return [ln["ifname"] for ln in ip_json("link", "show", "type", "bridge", netns=f"{lab}-{node}")]


def _leases(lab: str, node: str) -> list[str]:
    """host-local's dataDir on the node (the lab's state directory): a file per leased address."""
    d = Path(STATE, lab, "cni", "networks", node, "cnkd")
    return sorted(p.name for p in d.iterdir() if p.name[0].isdigit()) if d.is_dir() else []


def _probed(lab: str, pair: tuple[str, str]) -> None:
    out = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert out["ok"] and any((p["source"], p["destination"], p["protocol"]) == (*pair, "icmp")
                             for p in out["probes"]), out


def test_a_failed_add_of_a_nodes_first_pod_leaves_the_plugins_bridge_theirs(labs, tmp_path):
    lab, path = _lab(labs, tmp_path, {"a": "n1"})
    assert _bridges(lab, "n2") == []
    (tmp_path / "mode").write_text("qcf:ADD:b")
    proc = _up(path, lab, {"a": "n1", "b": "n2"}, check=False)
    assert proc.returncode == 4 and "pod b: CNI plugin qcf ADD: failed (exit 1): qcf said no [code 7]; its DEL ran" \
        in proc.stderr, proc.stderr
    assert _bridges(lab, "n2") == ["qcbr0"]  # bridge made it before qcf failed; its DEL leaves it
    assert _leases(lab, "n2") == []  # host-local's DEL released b's address
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 0 and "extra" not in status.stdout, status.stdout  # "extra: link qcbr0 in ...-n2"
    again = _up(path, lab, {"a": "n1"})
    assert "qcbr0" not in again.stdout and _bridges(lab, "n2") == ["qcbr0"], again.stdout  # "del link qcbr0"
    (tmp_path / "mode").write_text("")
    _up(path, lab, {"a": "n1", "b": "n2"})
    assert _leases(lab, "n2") == ["10.244.1.2"]
    _probed(lab, ("a", "b"))
    # The node's last pod goes: its DEL takes its veth and lease, the bridge stays the plugin's.
    removed = _up(path, lab, {"a": "n1"})
    assert "qcbr0" not in removed.stdout and _bridges(lab, "n2") == ["qcbr0"], removed.stdout
    assert _leases(lab, "n2") == []
    netlab("status", "--lab", lab)
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)


def test_a_removed_pod_whose_del_fails_is_said_kept_and_deleted_again(labs, tmp_path):
    lab, path = _lab(labs, tmp_path, {"a": "n1", "b": "n1"})
    assert _leases(lab, "n1") == ["10.244.0.2", "10.244.0.3"]
    (tmp_path / "mode").write_text("qcw:DEL:b")  # bridge (and host-local) never run: b's lease stays
    removed = _up(path, lab, {"a": "n1"})
    warned = [ln for ln in removed.stderr.splitlines() if "pod b" in ln]
    state = Path(STATE, lab, "cni", "networks", "n1")
    assert warned == [f"netlab: warning: CNI DEL of pod b: CNI plugin qcw DEL: failed (exit 1): qcw said no [code 11]; on "
                      f"node n1 may be left host-local's lease of 10.244.0.3 in {state}/cnkd: the lab keeps pod b's "
                      "CNI record, and the next up or down runs DEL again"], removed.stderr
    assert not any(ln["name"] == f"{lab}-b" for ln in ip_json("netns", "list"))  # its namespace went anyway
    assert _leases(lab, "n1") == ["10.244.0.2", "10.244.0.3"]
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "cni: pod b was taken out of the topology, but its CNI DEL failed" \
        in status.stdout, status.stdout
    (tmp_path / "mode").write_text("")
    again = _up(path, lab, {"a": "n1"})
    assert "ran the CNI DEL of removed pod b again: it succeeded" in again.stdout, again.stdout
    assert _leases(lab, "n1") == ["10.244.0.2"]  # host-local's DEL released it
    netlab("status", "--lab", lab)
    # The address is free again: a new pod c gets it, and traffic flows.
    _up(path, lab, {"a": "n1", "c": "n1"})
    assert _leases(lab, "n1") == ["10.244.0.2", "10.244.0.3"]
    _probed(lab, ("a", "c"))
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
