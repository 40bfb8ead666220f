"""A pod whose first CNI ADD a plugin fails is DELed and ADDed again as a new sandbox (root, real namespaces, real
plugins: Debian's bridge and host-local, then ``firstfail``, then Debian's firewall).

Debian's firewall plugin races on a node's first ADDs side by side (both create CNI-ADMIN; under iptables-nft the
loser's ``iptables -N`` exits 4, "CHAIN_USER_ADD failed (File exists)"), and ``up`` failed for it, where a node's
runtime DELs the failed sandbox and the kubelet creates it again. ``firstfail``, written into the test's tmp_path,
fails each pod's first ADD for real (exit 1, the spec's code 11, "try again later"), and passes its prevResult on
after: the failed sandbox's DEL runs every plugin (host-local releases the lease), the new one has its own
CNI_CONTAINERID, ``up`` says the first failure in a warning and exits 0, and the pods have their planned address
(``ip -j``), the firewall's rules (``iptables-save``) and traffic (ping).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import in_netns, ip_json, netlab, write_program

pytestmark = pytest.mark.root

STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"

FIRSTFAIL = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
args = dict(kv.split("=", 1) for kv in os.environ.get("CNI_ARGS", "").split(";") if "=" in kv)
mark = os.path.join({marks!r}, args.get("K8S_POD_NAME", "-"))
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif cmd == "ADD" and not os.path.exists(mark):
    with open(mark, "w") as fh:
        fh.write(os.environ["CNI_CONTAINERID"])
    print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": "firstfail: a pod's first ADD fails"}}))
    sys.exit(1)
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "crnet", "plugins": [
    {"type": "bridge", "bridge": "crbr0", "isGateway": True, "isDefaultGateway": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ips": True, "ipRanges": True}},
    {"type": "firstfail"}, {"type": "firewall", "backend": "iptables"}]}
PODS = {"a": "10.244.0.5", "b": "10.244.0.6"}


def calls_of(lab: str, pod: str) -> list[tuple[str, str, str, int]]:
    """The pod's calls in the lab's CNI log (`netlab cni log POD -o json`): (plugin, command, CNI_CONTAINERID, exit)."""
    out = json.loads(netlab("cni", "log", "--lab", lab, pod, "-o", "json").stdout)
    return [(c["plugin"], c["command"], c["env"]["CNI_CONTAINERID"], c["exit_code"]) for c in out["calls"]
            if c["command"] in ("ADD", "DEL")]


def test_a_pods_failed_first_add_is_deleted_then_added_as_a_new_sandbox(labs, tmp_path):
    assert os.access("/usr/lib/cni/firewall", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "bin").mkdir()
    write_program(tmp_path / "bin" / "firstfail", FIRSTFAIL.format(marks=str(marks)))
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cr")
    pods = "".join(f"  - {{name: {p}, node: n1, ip: {ip}}}\n" for p, ip in PODS.items())
    _, proc = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      f"nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]\npods:\n{pods}")
    for pod, ip in PODS.items():
        first = (marks / pod).read_text()
        calls = calls_of(lab, pod)
        second = calls[-1][2]
        assert second != first, calls  # a new sandbox, its own id
        assert calls == [("loopback", "ADD", first, 0), ("bridge", "ADD", first, 0), ("firstfail", "ADD", first, 1),
                         ("firewall", "DEL", first, 0), ("firstfail", "DEL", first, 0), ("bridge", "DEL", first, 0),
                         ("loopback", "DEL", first, 0), ("loopback", "ADD", second, 0), ("bridge", "ADD", second, 0),
                         ("firstfail", "ADD", second, 0), ("firewall", "ADD", second, 0)], calls
        assert (f"warning: cni: pod {pod}'s first ADD failed: CNI plugin firstfail ADD: failed (exit 1): firstfail: a "
                "pod's first ADD fails [code 11]; its DEL ran, and the ADD of a new sandbox (a new CNI_CONTAINERID) "
                "passed on try 2 of 3, as the kubelet creates a pod's sandbox again after a FailedCreatePodSandBox "
                f"(`netlab cni log {pod}` has every call)") in proc.stderr, proc.stderr
        [eth0] = ip_json("addr", "show", "eth0", netns=f"{lab}-{pod}")
        assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] == [(ip, 24)]
        # host-local released the failed sandbox's lease: the address is the new sandbox's
        assert Path(STATE, lab, "cni", "networks", "n1", "crnet", ip).read_text().split()[0] == second
    save = subprocess.run(["ip", "netns", "exec", f"{lab}-n1", "iptables-save", "-t", "filter"], check=True,
                          capture_output=True, text=True).stdout
    assert sorted(line.split()[3] for line in save.splitlines()
                  if line.startswith("-A CNI-FORWARD -d ")) == sorted(f"{ip}/32" for ip in PODS.values()), save
    ping = in_netns(f"{lab}-a", "ping", "-c", "1", "-W", "2", PODS["b"])
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
