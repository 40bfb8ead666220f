"""A nodePort whose endpoints a NetworkPolicy isolates, probed on a real lab (root).

`netlab probe` left such a nodePort out ("the nodes' NAT picks the address"); it now expects what the evaluator
says of the address the endpoint's node judges: the receiving node's address towards the endpoint when the
endpoint runs elsewhere (after its masquerade), the client's own when the receiving node holds it (FORWARD comes
before POSTROUTING), and a node's own packet to its own pod never judged. The probe must pass, once with a policy
that lets only a client pod in and once with an ipBlock of the nodes' addresses as well, and connections made by
hand, from the internet host and from a pod on the other node, must agree.
"""

from __future__ import annotations

import copy
import json
import sys

import pytest

from helpers import netlab, probe_failures
from netlab import Lab
from netlab.api.topology import load

pytestmark = pytest.mark.root

TOPO = {
    "nodes": [{"name": "n1"}, {"name": "n2"}],
    "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web", "tier": "web"}},
             {"name": "web-2", "node": "n2", "labels": {"tier": "web"}},
             {"name": "client", "node": "n2", "labels": {"role": "client"}}],
    "services": [{"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]},
                 {"name": "both-np", "type": "NodePort", "selector": {"tier": "web"},
                  "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30081}]}],
    "internet": {"hosts": [{"name": "example", "ip": "203.0.113.10"}]},
    "networkPolicies": [{"name": "web-from-clients", "spec": {
        "podSelector": {"matchLabels": {"tier": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}}],
}
CONNECT = ("import socket, sys\n"
           "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()\n"
           "except OSError as e:\n    sys.exit(f'{type(e).__name__}: {e}')\n")


def nodes_block(topo: dict) -> list[dict]:
    """ipBlocks of every address a node sends from: the underlay's (eth0) and each flannel.1's /32."""
    lab = load(topo).lab
    return [{"ipBlock": {"cidr": str(lab.topo.network.underlay.cidr)}}] + \
        [{"ipBlock": {"cidr": f"{n.vtep_ip}/32"}} for n in lab.nodes]


def nodeport_probes(name: str) -> tuple[dict, list[str]]:
    """(client, receiving node) -> (expected, observed) of web-np's nodePort probes, and the run's notes."""
    proc = netlab("probe", "--lab", name, "-o", "json", check=False)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, probe_failures(data)
    got = {(p["source"], p["service"]["node"]): (p["expected"], p["observed"]) for p in data["probes"]
           if p["service"] and p["service"]["via"] == "NodePort" and p["service"]["name"] == "web-np"}
    return got, data["not_probed"]


def connects(lab: Lab, who: str, node: str) -> bool:
    proc = lab.exec(who, [sys.executable, "-c", CONNECT, str(lab.model.node(node).ip), "30080"], timeout=20)
    assert proc.returncode == 0 or "Error" in proc.stderr, proc.stderr
    return proc.returncode == 0


def check_by_hand(lab: Lab, got: dict) -> None:
    """The internet host's own connections go as its probes said. The client pod on n2 leaves n2 masqueraded to
    n2's eth0 address towards n1's nodePort (Flannel: pod network to outside it), and n2 DNATs and masquerades
    it to its address towards n1 through its own: either way n1 sees what it sees of n2, so it fares as n2 does."""
    for node in ("n1", "n2"):
        assert connects(lab, "example", node) == (got[("example", node)][0] == "reachable"), (node, got)
        assert connects(lab, "client", node) == (got[("n2", node)][0] == "reachable"), (node, got)


@pytest.mark.parametrize("mode, proxy", [("vxlan", "iptables"), ("vxlan", "nftables"), ("host-gw", "iptables")])
def test_isolated_nodeport_is_probed_with_the_policys_verdict(labs, mode, proxy):
    """The same verdicts in each: the policy chains are iptables FORWARD in both kube-proxy modes, and with host-gw
    the receiving node's address towards a remote endpoint is its eth0 one, in the underlay's block."""
    name = labs.name("pbn")
    topo = {"name": name, "network": {"mode": mode}, "cluster": {"kubeProxyMode": proxy}, **copy.deepcopy(TOPO)}
    path, _ = labs.up(json.dumps(topo))
    lab = Lab.attach(name)

    # Only role=client may reach web-1: a nodePort hides the client behind a node address, so only n1's own
    # connection (never judged) gets through, even the client pod's is refused.
    got, notes = nodeport_probes(name)
    unreachable, reachable = ("unreachable", "unreachable"), ("reachable", "reachable")
    assert got == {("n1", "n1"): reachable, ("n2", "n1"): unreachable, ("example", "n1"): unreachable,
                   ("n1", "n2"): unreachable, ("n2", "n2"): unreachable, ("example", "n2"): unreachable}, got
    assert any(n.startswith("n1 -> svc/both-np tcp/80 (NodePort 30081 on n1): not probed: policies allow web-1")
               for n in notes), notes
    check_by_hand(lab, got)

    # And from the nodes' addresses: the masqueraded packets get in, the internet host's own address does not
    # (n1 holds web-1 and judges it before masquerading it); through n2 it arrives as n2's flannel.1 address
    # (eth0's with host-gw).
    topo["networkPolicies"][0]["spec"]["ingress"][0]["from"] += nodes_block(topo)
    labs.up(json.dumps(topo))
    got, notes = nodeport_probes(name)
    assert got == {("n1", "n1"): reachable, ("n2", "n1"): reachable, ("example", "n1"): unreachable,
                   ("n1", "n2"): reachable, ("n2", "n2"): reachable, ("example", "n2"): reachable}, got
    assert any(n.startswith("example -> svc/both-np tcp/80 (NodePort 30081 on n1): not probed") for n in notes)
    check_by_hand(lab, got)
