"""kube-proxy's base chain policy and table flags in nftables mode, and the ClientIP affinity timeout in both modes,
on real labs (root).

A ``policy drop`` put by hand on kube-proxy's ``filter-forward`` stops all forwarding on that node: status says so
in iptables mode's words, trace names the policy where the packet died, and up puts ``policy accept`` back in place
(the affinity sets keep their clients). A dormant table is drift, and up makes the table again.
``sessionAffinityConfig.clientIP.timeoutSeconds`` is ``recent --rcheck --seconds N`` (iptables) or the affinity
sets' ``timeout Ns`` (nftables), and a client still sticks to one endpoint. One lab per mode, always taken down.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: node-1, ip: 192.168.122.2}}
  - {{name: node-2, ip: 192.168.122.3}}
pods:
  - {{name: web-1, node: node-1, labels: {{app: web}}}}
  - {{name: web-2, node: node-2, labels: {{app: web}}}}
  - {{name: client, node: node-1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.30
    sessionAffinity: ClientIP
    sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {seconds}}}}}
    ports: [{{port: 80, targetPort: 8080}}]
"""
PY = sys.executable
CLIENT = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2)\n"
          "s.sendall(b'hi\\n');print(s.recv(4096).decode().strip())")


def served_by(lab: str, ip: str, port: int) -> str:
    out = in_netns(f"{lab}-client", PY, "-c", CLIENT, ip, str(port), check=True).stdout
    return json.loads(out)["pod"]


def nft_json(ns: str, *what: str) -> list[dict]:
    return json.loads(in_netns(ns, "nft", "-j", "list", *what, check=True).stdout)["nftables"]


def affinity_sets(ns: str) -> list[dict]:
    return [o["set"] for o in nft_json(ns, "table", "ip", "kube-proxy")
            if o.get("set", {}).get("name", "").startswith("affinity-")]


def status(lab: str) -> subprocess.CompletedProcess:
    return netlab("status", "--lab", lab, check=False)


@pytest.fixture
def lab_in(tmp_path):
    def make(mode: str, seconds: int = 60):
        lab = unique_lab("nd")
        path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, mode=mode, seconds=seconds), f"{lab}.yaml")
        return lab, path
    return make


def test_nftables_policy_drop_is_drift_traced_and_repaired_and_the_affinity_timeout_holds(lab_in, tmp_path):
    lab, path = lab_in("nftables")
    with lab_up(path, lab):
        ns = f"{lab}-node-1"
        web2 = json.loads(netlab("get", "pods", "--lab", lab, "web-2", "-o", "json").stdout)["items"][0]["ip"]
        # The affinity timeout: every affinity set's, and the element the client's connections put there.
        assert [s["timeout"] for s in affinity_sets(ns)] == [60, 60]
        assert len({served_by(lab, "10.96.0.30", 80) for _ in range(8)}) == 1  # sticks to one endpoint
        held = [e["elem"] for s in affinity_sets(ns) for e in s.get("elem", []) if isinstance(e, dict)]
        assert len(held) == 1 and 0 < held[0]["expires"] <= 60, held  # the set's timeout: not said again
        assert status(lab).returncode == 0

        # kube-proxy's filter-forward with the real type, hook and priority, and policy drop.
        chain = next(o["chain"] for o in nft_json(ns, "chain", "ip", "kube-proxy", "filter-forward") if "chain" in o)
        assert (chain["type"], chain["hook"], chain["prio"], chain["policy"]) == ("filter", "forward", 0, "accept")
        in_netns(ns, "nft", "add", "chain", "ip", "kube-proxy", "filter-forward",
                 "{ type filter hook forward priority 0 ; policy drop ; }", check=True)
        assert in_netns(f"{lab}-client", PY, "-c", CLIENT, web2, "8080").returncode != 0  # forwarding is dead
        proc = status(lab)
        assert proc.returncode == 1 and "policy of chain filter-forward is drop, want accept" in proc.stdout, \
            proc.stdout
        proc = netlab("trace", "--lab", lab, "client", "web-2", "--proto", "tcp", "--port", "8080", "-o", "json",
                      check=False, timeout=60)
        lost = json.loads(proc.stdout)["lost"]
        assert proc.returncode == 1 and lost["netns"] == ns, lost
        assert "its base chain filter-forward's policy is drop (kube-proxy gives it none: accept)" in lost["reason"]
        assert lost["fix"] == f"ip netns exec {ns} nft add chain ip kube-proxy filter-forward '{{ policy accept ; }}'"

        out = netlab("up", "-t", path).stdout
        assert f"restore nftables table ip kube-proxy in {ns}" in out, out
        chain = next(o["chain"] for o in nft_json(ns, "chain", "ip", "kube-proxy", "filter-forward") if "chain" in o)
        assert chain["policy"] == "accept" and chain["prio"] == 0
        assert status(lab).returncode == 0
        # In place, not the table again: the client is still in its affinity set.
        assert [e["elem"]["val"] for s in affinity_sets(ns) for e in s.get("elem", [])] == [held[0]["val"]]
        assert served_by(lab, web2, 8080) == "web-2"

        # A dormant table hooks nothing: drift, and up makes the table again.
        in_netns(ns, "nft", "add", "table", "ip", "kube-proxy", "{ flags dormant ; }", check=True)
        proc = status(lab)
        assert proc.returncode == 1 and "table ip kube-proxy has flags dormant, want none" in proc.stdout, proc.stdout
        netlab("up", "-t", path)
        assert "dormant" not in in_netns(ns, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
        assert status(lab).returncode == 0

        # Another timeout in the file: status -t FILE says the sets differ, up writes them.
        write_topology(tmp_path, TOPOLOGY.format(lab=lab, mode="nftables", seconds=120), f"{lab}.yaml")  # edited
        proc = netlab("status", "-t", path, check=False)
        assert proc.returncode == 1 and "timeout 120s" in proc.stdout, proc.stdout
        netlab("up", "-t", path)
        assert [s["timeout"] for s in affinity_sets(ns)] == [120, 120] and status(lab).returncode == 0
        assert len({served_by(lab, "10.96.0.30", 80) for _ in range(8)}) == 1


def test_iptables_mode_checks_the_recent_list_for_the_timeout(lab_in, tmp_path):
    lab, path = lab_in("iptables", 90)
    with lab_up(path, lab):
        ns = f"{lab}-node-1"
        save = in_netns(ns, "iptables-save", "-t", "nat", check=True).stdout
        rcheck = [line for line in save.splitlines() if "--rcheck" in line]
        assert len(rcheck) == 2 and all(" --rcheck --seconds 90 --reap " in line for line in rcheck), rcheck
        assert len({served_by(lab, "10.96.0.30", 80) for _ in range(8)}) == 1  # sticks to one endpoint
        proc = netlab("status", "-t", write_topology(tmp_path, TOPOLOGY.format(lab=lab, mode="iptables",
                                                                               seconds=10800), "d.yaml"),
                      check=False)
        assert proc.returncode == 1 and "--seconds 10800 --reap" in proc.stdout, proc.stdout
