"""trace on a real lab (root): a ClusterIP on a port its Service does not have (QA q40 1), in both kube-proxy modes.

`netlab trace POD CLUSTER_IP --proto tcp --port 82` (also UDP on the Service's TCP port, and svc/NAME --port 82)
exited 2, "Service default/web has no port 82/tcp", though the kernel handles the packet: kube-proxy DNATs only the
Service's ports, so in nftables mode cluster-ips-check rejects it at once (curl: connection refused; UDP: ICMP
port unreachable) and in iptables mode it goes out by the node's default route and nothing answers (curl times
out). trace now follows it as it goes: REFUSED at the node's cluster-ips-check row, or LOST at the gateway.
"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import in_netns, netlab, traced

pytestmark = pytest.mark.root

LAB = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: w1, node: n1, labels: {{app: web}}}}
  - {{name: c1, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
REJECT = 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
# what a client's socket gets: refused (an ICMP port unreachable came back), or nothing within 2 s
SEND = """import socket, sys
ip, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(2)
try:
    s.connect((ip, port))
    s.send(b"x")
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_cluster_ip_on_a_port_its_service_lacks_is_traced_as_the_kernel_handles_it(labs, mode):
    lab = labs.name("tp")
    labs.up(LAB.format(lab=lab, mode=mode))
    node, under, client = f"{lab}-n1", f"{lab}-underlay", f"{lab}-c1"
    svc = json.loads(netlab("get", "svc", "--lab", lab, "-o", "json").stdout)
    cip = next(s["cluster_ip"] for s in svc["items"] if s["name"] == "web")
    # the kernel's rules: kube-proxy DNATs the ClusterIP on TCP 80 only; nftables mode rejects other ports
    if mode == "iptables":
        nat = in_netns(node, "iptables-save", "-t", "nat", check=True).stdout
        to_cip = [line for line in nat.splitlines() if f"-d {cip}/32" in line and "KUBE-SERVICES" in line]
        assert to_cip and all("-p tcp" in line and "--dport 80 " in line for line in to_cip), to_cip
    else:
        check = in_netns(node, "nft", "list", "chain", "ip", "kube-proxy", "cluster-ips-check", check=True).stdout
        assert REJECT in check, check
        assert cip in in_netns(node, "nft", "list", "set", "ip", "kube-proxy", "cluster-ips", check=True).stdout
    # the kernel sends such an error at most once a second to a sender (the node's reject, to c1 each time): let
    # it answer every packet, so each real send and each trace hears its own
    in_netns(node, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
    curl = in_netns(client, "curl", "-sS", "-m", "2", f"http://{cip}:82/")
    assert curl.returncode == (28 if mode == "iptables" else 7), curl.stderr  # timed out / refused at once
    for spec, proto, port in ((cip, "tcp", "82"), (cip, "udp", "80"), ("svc/web", None, "82")):
        sent = proto or "tcp"
        real = in_netns(client, sys.executable, "-c", SEND, cip, port, sent, check=True).stdout.strip()
        args = ("c1", spec, "--port", port) + (("--proto", proto) if proto else ())
        code, doc = traced(lab, *args)
        assert code == 1 and not doc["delivered"] and doc["lost"]["fix"] is None, doc["lost"]
        lost = doc["lost"]
        what = f"{sent.upper()} port {port}"
        if mode == "iptables":
            assert real == "timeout", (spec, proto, real)
            assert doc["refused"] is None and lost["netns"] == under, lost
            assert f"kube-proxy DNATs only the Service's ports (TCP 80), not {what}, so the packet followed the " \
                   "node's routes as it was" in lost["reason"], lost
            assert not doc["icmp_errors"], doc["icmp_errors"]
            continue
        assert real == "refused", (spec, proto, real)
        hop = next(h for h in doc["hops"] if h["index"] == lost["hop"])
        assert (lost["netns"], hop["kind"], hop["facts"]["reject_rule"]) == (node, "dnat", REJECT), hop
        assert doc["refused"].startswith(f"{cip} is Service default/web's ClusterIP and no port of it matches "
                                         f"{what}: node n1's kube-proxy rule `{REJECT}` (chain cluster-ips-check) "
                                         "rejected it at once"), doc["refused"]
        assert "filter-forward jumps to cluster-ips-check" in lost["reason"], lost
        # the capture heard the node's answer, as the client's socket did
        assert any("port unreachable" in e["text"] for e in doc["icmp_errors"]), doc["icmp_errors"]
        text = netlab("trace", "--lab", lab, *args, check=False)
        assert text.returncode == 1 and f"result: REFUSED at hop {lost['hop']} ({node} " in text.stdout, text.stdout
    # the node's own socket: rejected in filter-output, its connect refused (not ping's sendmsg EPERM)
    real = in_netns(node, sys.executable, "-c", SEND, cip, "82", "tcp", check=True).stdout.strip()
    code, doc = traced(lab, "n1", cip, "--port", "82")
    assert code == 1 and not doc["delivered"], doc["lost"]
    if mode == "iptables":
        assert real == "timeout" and doc["refused"] is None and doc["lost"]["netns"] == under, doc["lost"]
        return
    assert real == "refused" and doc["refused"] and "filter-output jumps to cluster-ips-check" in \
        doc["lost"]["reason"], doc["lost"]
    assert "and its connect fails at once (Connection refused)" in doc["lost"]["reason"], doc["lost"]
