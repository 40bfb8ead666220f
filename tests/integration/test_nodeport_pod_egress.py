"""A pod isolated for egress, connecting to a nodePort (root): judged on its own node, at the address the packet
has there (trace/nodeport.py, model/netpol.nodeport_source).

The client pod on n2 may send only to n1's node address, port 30080. Its packet to n1's nodePort leaves n2 with
that destination (n1 DNATs it, later): allowed, answered by web-1. Its packet to its own node's nodePort is DNATed
by n2 in PREROUTING, before n2's FORWARD, so its egress is judged against web-1's pod address and port 8080:
REJECTed, as is web-1's address directly. Real connections, the kernel's REJECT counters, `expect:` entries in
probe and trace's verdicts must agree, in both kube-proxy modes.

The direct connection is refused; the one to n2's nodePort times out: the packet came into n2 through cni0's
bridge port (br_netfilter handed it to iptables), and the kernel's REJECT answers such a packet straight out of
that port (nf_send_reset), past the NAT that would give the reset n2's nodePort as its source: it leaves from
web-1's address (tcpdump on the client's eth0: 10.244.0.2.8080 > 10.244.1.2 [R.]), which the client's socket does
not take. trace says so; a client that came over the overlay is refused as usual (test_trace_services.py).
With bridge-nf-call-iptables = 0 in n2 the packet is routed, not bridged, through iptables: the reset is too, and
the client is refused.
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import netlab
from netlab import Lab
from netlab.api.topology import load
from netlab.kernel.iptables import save as iptables_save

pytestmark = pytest.mark.root

CONNECT = ("import socket, sys\n"
           "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()\n"
           "except OSError as e:\n    sys.exit(f'{type(e).__name__}: {e}')\n")


def topology(name: str, proxy: str) -> dict:
    topo = {"name": name, "cluster": {"kubeProxyMode": proxy},
            "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "web-1", "node": "n1", "labels": {"app": "web"}},
                     {"name": "client", "node": "n2", "labels": {"role": "client"}}],
            "services": [{"name": "web-np", "type": "NodePort", "selector": {"app": "web"},
                          "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}]}
    n1 = load(topo).lab.node("n1").ip
    topo["networkPolicies"] = [{"name": "client-to-n1-nodeport", "spec": {
        "podSelector": {"matchLabels": {"role": "client"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": f"{n1}/32"}}], "ports": [{"protocol": "TCP", "port": 30080}]}]}}]
    topo["expect"] = [{"from": "client", "to": "n1", "proto": "tcp", "port": 30080},
                      {"from": "client", "to": "n2", "proto": "tcp", "port": 30080, "reach": False}]
    return topo


def connect(lab: Lab, ip: str, port: int) -> str:
    proc = lab.exec("client", [sys.executable, "-c", CONNECT, ip, str(port)], timeout=20)
    return "connected" if proc.returncode == 0 else proc.stderr.strip().split(":")[0]


def rejects(netns: str) -> int:
    """Packets the NETPOL chains of a node REJECTed so far (iptables-save -c)."""
    text = iptables_save(netns, "filter", counters=True)
    return sum(int(line.split("]")[0].split(":")[0].lstrip("[")) for line in text.splitlines()
               if line.startswith("[") and "NETPOL" in line and "-j REJECT" in line)


@pytest.mark.parametrize("proxy", ["iptables", "nftables"])
def test_a_pods_egress_to_a_nodeport_is_judged_on_its_node_before_or_after_the_dnat(labs, proxy):
    name = labs.name("npe")
    labs.up(json.dumps(topology(name, proxy)))
    lab = Lab.attach(name)
    n1, n2 = (str(lab.model.node(n).ip) for n in ("n1", "n2"))
    web = str(lab.model.pod("web-1").ip)

    # The kernel: n1's nodePort answers; n2's own, and web-1's address, are refused by n2's REJECT.
    before = rejects(f"{name}-n2")
    assert connect(lab, n1, 30080) == "connected"
    assert connect(lab, n2, 30080) == "TimeoutError"
    assert connect(lab, web, 8080) == "ConnectionRefusedError"
    assert rejects(f"{name}-n2") - before >= 2

    # probe: both expect: entries as expected, judged as the Service connections they are.
    report = json.loads(netlab("probe", "--lab", name, "-o", "json", check=False).stdout)
    mine = {p["destination"]: p for p in report["probes"] if p["source"] == "client" and p.get("port") == 30080}
    assert {d: p["as_expected"] for d, p in mine.items()} == {"n1": True, "n2": True}, mine
    assert mine["n1"]["outcome"] == "reply" and mine["n2"]["outcome"] == "timeout", mine

    # trace: delivered through n1, lost at n2's REJECT with the egress policy named.
    proc = netlab("trace", "--lab", name, "client", "n1", "--port", "30080", "-o", "json", check=False)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"] and d["endpoint"]["endpoint"] == "web-1", d.get("lost")
    proc = netlab("trace", "--lab", name, "client", "n2", "--port", "30080", "-o", "json", check=False)
    d = json.loads(proc.stdout)
    assert proc.returncode == 1 and not d["delivered"], d
    [entry] = d["policy"]
    assert (entry["node"], entry["direction"], entry["counted"]) == ("n2", "egress", True), entry
    assert entry["policies"] == ["default/client-to-n1-nodeport"], entry
    assert d["lost"]["netns"] == f"{name}-n2" and "by policy default/client-to-n1-nodeport" in d["lost"]["reason"]
    assert not d["reply_received"] and "; the client gets no reset: the packet came in through cni0's bridge port" \
        in d["lost"]["reason"] and f"which the client's connection to {n2}:30080 does not take" in d["lost"]["reason"]


def test_a_rejected_client_on_a_node_whose_bridge_skips_iptables_is_refused_and_trace_adds_no_reset_note(labs):
    """bridge-nf-call-iptables = 0 in n2 (in its namespace only): cni0 hands the client's frame for its own MAC up
    to the IP layer without br_netfilter, so the REJECT in FORWARD answers a routed packet: the reset goes out
    through the IP stack, conntrack gives it n2's nodePort as its source, and the client is refused (the connection
    that times out with the sysctl at 1). trace gets the reset back and adds no "no reset" note."""
    import subprocess

    name = labs.name("npb")
    labs.up(json.dumps(topology(name, "iptables")))
    lab = Lab.attach(name)
    n2 = str(lab.model.node("n2").ip)
    subprocess.run(["ip", "netns", "exec", f"{name}-n2", "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"],
                   check=True)
    before = rejects(f"{name}-n2")
    assert connect(lab, n2, 30080) == "ConnectionRefusedError"
    assert rejects(f"{name}-n2") - before == 1  # the policy's REJECT still judged it: in FORWARD, routed

    proc = netlab("trace", "--lab", name, "client", "n2", "--port", "30080", "-o", "json", check=False)
    d = json.loads(proc.stdout)
    assert proc.returncode == 1 and not d["delivered"] and d["reply_received"], d
    assert "by policy default/client-to-n1-nodeport" in d["lost"]["reason"]
    assert "no reset" not in d["lost"]["reason"], d["lost"]["reason"]
