"""A pod dialling another node's nodePort that kube-proxy DNATs back to the pod itself: a hairpin through that
node (root; probe/nodeport_pods.py).

web-1 on n1 is the Service's only endpoint. Its connection to n2's nodePort leaves n1 masqueraded by Flannel to
n1's eth0 address (it leaves the pod network); n2 DNATs it back to web-1, KUBE-EXT marks it (0x4000) and n2
masquerades it to its flannel.1 address: web-1 is reached from n2's address. Its ingress policy judges that
address, not web-1 itself (it is no hairpin to the policies, unlike web-1's own node's nodePort): a default-deny
refuses it (n1's REJECT counts it) and an ipBlock of n2's address lets it in. The kernel's conntrack, lab.reach,
probe's expect: entries and trace must all agree.
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import in_netns, netlab, reject_counts
from netlab import Lab
from netlab.api.topology import load

pytestmark = pytest.mark.root

ECHO = ("import socket, sys\n"
        "try:\n    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)\n"
        "    s.sendall(b'hi\\n'); print(s.recv(300).decode())\n"
        "except OSError as e:\n    sys.exit(f'{type(e).__name__}: {e}')\n")


def topology(name: str, allow: bool) -> dict:
    topo = {"name": name, "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}}, {"name": "other", "node": "n2"}],
            "services": [{"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
                          "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}]}
    vtep = load(topo).lab.node("n2").vtep_ip
    rules = [{"from": [{"ipBlock": {"cidr": f"{vtep}/32"}}]}] if allow else []
    topo["networkPolicies"] = [{"name": "web-ingress", "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                                                                "policyTypes": ["Ingress"], "ingress": rules}}]
    return topo


@pytest.mark.parametrize("allow", [False, True], ids=["default-deny", "allow-n2"])
def test_a_pods_connection_to_another_nodes_nodeport_back_to_itself(labs, tmp_path, allow):
    name = labs.name("nph")
    topo = topology(name, allow)
    labs.up(json.dumps(topo))
    lab = Lab.attach(name)
    n1, n2 = (lab.model.node(n) for n in ("n1", "n2"))
    web = str(lab.model.pod("web-1").ip)

    # The kernel: n2 masquerades it to flannel.1's address, seen by web-1 itself; or n1's REJECT refuses it.
    before = sum(reject_counts(f"{name}-n1").values())
    proc = lab.exec("web-1", [sys.executable, "-c", ECHO, str(n2.ip), "30080"], timeout=20)
    if allow:
        assert proc.returncode == 0, proc.stderr
        seen = json.loads(proc.stdout)
        assert (seen["pod"], seen["client"].split(":")[0]) == ("web-1", str(n2.vtep_ip)), seen
        ct = in_netns(f"{name}-n2", "conntrack", "-L", "-p", "tcp", "--orig-port-dst", "30080").stdout
        assert f"src={n1.ip} dst={n2.ip}" in ct and f"src={web} dst={n2.vtep_ip} sport=8080" in ct, ct
    else:
        assert proc.returncode != 0, proc.stdout
        assert sum(reject_counts(f"{name}-n1").values()) > before
    own = lab.exec("web-1", [sys.executable, "-c", ECHO, str(n1.ip), "30080"], timeout=20)
    assert own.returncode == 0, own.stderr  # its own node's nodePort: a hairpin, never judged

    # lab.reach judges it as that hairpin: expected, and why.
    r = lab.reach("web-1", "n2", port=30080)
    assert r.as_expected and r.reachable is allow, r
    assert "hairpin through n2" in r.reason and str(n2.vtep_ip) in r.reason, r.reason
    assert ("policy" in r.reason) and ("web-ingress" in r.reason), r.reason
    if allow:
        assert r.seen_source == str(n2.vtep_ip), r
    mine = lab.reach("web-1", "n1", port=30080)
    assert mine.as_expected and mine.reachable and mine.seen_source == str(n1.gateway.ip), mine

    # probe: an expect: entry saying what the kernel does holds, and the hairpin's rule is the one checked.
    topo["expect"] = [{"from": "web-1", "to": "n2", "proto": "tcp", "port": 30080, "reach": allow}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(topo))
    proc = netlab("probe", "-t", str(path), "--proto", "tcp", "-o", "json", check=False)
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    [p] = [p for p in report["probes"] if p["source"] == "web-1" and p["destination"] == "n2"
           and p.get("port") == 30080]
    assert p["as_expected"], p
    if allow:
        assert p["expected_client"] == [str(n2.vtep_ip)] and p["answered_by"] == "web-1", p

    # trace: delivered from n2's address, or lost at n1's ingress policy of web-1.
    proc = netlab("trace", "--lab", name, "web-1", "n2", "--port", "30080", "-o", "json", check=False)
    d = json.loads(proc.stdout)
    assert d["delivered"] is allow, d.get("lost")
    if not allow:
        assert any(e["node"] == "n1" and e["direction"] == "ingress" for e in d["policy"]), d["policy"]

