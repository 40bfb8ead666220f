"""trace on a real lab (root): a packet a node sends out of eth0 by its default route is lost at the underlay's
gateway, and a node's ping to a ClusterIP.

* host-gw, a node without its route to another node's pod CIDR (QA q13 1): the trace stopped at the node's eth0
  row, marked "-" (nothing a capture can show), while its own pcap held the frame leaving that eth0 and reaching
  the underlay's br0. The row is now seen, the walk goes on to the gateway, which does not forward (ip_forward 0,
  as planned), and the packet is lost there, with the missing route as the reason and its `ip route add` as the
  fix; the kernel's `ip -j route get` gives the gateway the row names.
* A node's ping to a ClusterIP (kube-proxy DNATs only its ports). iptables mode: lost at the underlay's gateway,
  no fix (it said "ip_forward = 0 in underlay" and `sysctl -w ... =1`); a real ping gets no answer. nftables mode:
  cluster-ips-check's reject rule (it said "no ARP entry ... never made the kernel ask"); a real ping gets an ICMP
  port unreachable from the node's own address, which the trace's capture saw as well.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

import pytest

from helpers import in_netns, netlab, traced

pytestmark = pytest.mark.root

HOST_GW = """name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: a}}, {{name: b}}]
pods:
  - {{name: pa, node: a}}
  - {{name: pb, node: b}}
"""
SERVICE = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}]
pods:
  - {{name: w1, node: n1, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""
INTERNET = """internet:
  cidr: 203.0.113.0/24
  gateway: {ip: 203.0.113.1}
  hosts: [{name: example, ip: 203.0.113.10}]
"""
REJECT = 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'


def row(doc: dict, index) -> dict:
    return next(h for h in doc["hops"] if h["index"] == index)


def test_a_missing_host_gw_route_is_seen_leaving_eth0_and_lost_at_the_gateway(labs, tmp_path):
    lab = labs.name("te")
    labs.up(HOST_GW.format(lab=lab))
    a, under = f"{lab}-a", f"{lab}-underlay"
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    src, dst = pods["pa"]["ip"], pods["pb"]["ip"]
    [cidr] = [r["dst"] for r in json.loads(in_netns(a, "ip", "-j", "route", check=True).stdout)
              if r.get("gateway") and r["dst"] != "default"]
    netlab("break", "pod-cidr-route-missing", "--lab", lab, "--target", "a")
    # the kernel: no route to b's pod CIDR, the default route to the underlay's gateway, which does not forward
    assert cidr not in {r["dst"] for r in json.loads(in_netns(a, "ip", "-j", "route", check=True).stdout)}
    [got] = json.loads(in_netns(a, "ip", "-j", "route", "get", dst, "from", src, "iif", "cni0", check=True).stdout)
    assert got["dev"] == "eth0" and got.get("gateway"), got
    assert in_netns(under, "sysctl", "-n", "net.ipv4.ip_forward", check=True).stdout.strip() == "0"
    pcap = tmp_path / "t.pcap"
    code, doc = traced(lab, "pa", "pb", "--pcap", str(pcap))
    assert code == 1 and not doc["delivered"], doc
    [out] = [h for h in doc["hops"] if h["netns"] == a and h["facts"].get("missing_route")]
    assert out["device"] == "eth0" and out["seen"] is True and out["facts"]["gateway"] == got["gateway"], out
    assert f"no route to {cidr}" in out["problem"] and "host-gw's route via that node's address is missing" \
        in out["problem"], out
    lost = doc["lost"]
    assert (lost["netns"], lost["device"]) == (under, "br0"), lost
    assert lost["hop"] == max(h["index"] for h in doc["hops"]) and row(doc, lost["hop"])["kind"] == "drop"
    assert f"net.ipv4.ip_forward = 0 in {under}: the underlay does not forward" in lost["reason"], lost
    assert f"it came here because no route to {cidr}" in lost["reason"], lost
    assert lost["fix"].startswith(f"ip -n {a} route add {cidr} via ") and "sysctl" not in lost["fix"], lost
    # the capture: the request left a's eth0 and reached the underlay's br0, as the rows seen say
    if shutil.which("tshark"):
        frames = subprocess.run(["tshark", "-r", str(pcap), "-Y", f"ip.dst == {dst}", "-T", "fields", "-e",
                                 "frame.interface_name"], capture_output=True, text=True, check=True).stdout.split()
        assert f"{a}/eth0" in frames and f"{under}/br0" in frames, frames
    assert any(h["seen"] and h["netns"] == under and h["device"] == "br0" for h in doc["hops"]), doc["hops"]
    subprocess.run(shlex.split(lost["fix"]), check=True, timeout=10)  # the fix, as a user types it
    code, doc = traced(lab, "pa", "pb")
    assert code == 0 and doc["delivered"], doc.get("lost")


VXLAN = """name: {lab}
nodes: [{{name: a}}, {{name: b}}]
pods:
  - {{name: pa, node: a}}
  - {{name: pb, node: b}}
"""


def test_a_down_cni0s_packet_goes_to_the_gateway_and_is_lost_there_as_for_a_missing_route(labs, tmp_path):
    """cni0 set down on the destination node (no break scenario does it: the kernel, as a learner would): its
    connected route goes with it, and the kernel forwards the packet out of eth0 by the default route to the
    underlay's gateway (`ip -j route get`, the capture). trace said LOST at the cni0 row ('-') though it saw the
    packet leave eth0 and reach br0: it is lost at the gateway, cni0 down named there as why, its fix."""
    lab = labs.name("tg")
    labs.up(VXLAN.format(lab=lab))
    b, under = f"{lab}-b", f"{lab}-underlay"
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    src, dst = pods["pa"]["ip"], pods["pb"]["ip"]
    subprocess.run(["ip", "-n", b, "link", "set", "cni0", "down"], check=True)  # the fault
    [got] = json.loads(in_netns(b, "ip", "-j", "route", "get", dst, "from", src, "iif", "flannel.1",
                                check=True).stdout)
    assert got["dev"] == "eth0" and got.get("gateway"), got  # not dropped at cni0: out by the default route
    pcap = tmp_path / "t.pcap"
    code, doc = traced(lab, "pa", "pb", "--pcap", str(pcap))
    assert code == 1 and not doc["delivered"], doc
    [link] = [h for h in doc["hops"] if h["kind"] == "link"]
    assert (link["netns"], link["device"]) == (b, "cni0") and "cni0 in" in link["problem"], link
    out = row(doc, link["index"] + 1)
    assert (out["netns"], out["device"], out["seen"]) == (b, "eth0", True), out
    assert out["facts"]["gateway"] == got["gateway"], out
    lost = doc["lost"]
    assert (lost["netns"], lost["device"]) == (under, "br0"), lost
    assert lost["hop"] == max(h["index"] for h in doc["hops"]), lost
    assert f"it came here because cni0 in {b} is down, and a link set down loses its routes" in lost["reason"], lost
    assert lost["fix"] == f"ip -n {b} link set cni0 up", lost
    if shutil.which("tshark"):  # the capture: the request left b's eth0 and reached the underlay's br0
        frames = subprocess.run(["tshark", "-r", str(pcap), "-Y", f"ip.dst == {dst}", "-T", "fields", "-e",
                                 "frame.interface_name"], capture_output=True, text=True, check=True).stdout.split()
        assert f"{b}/eth0" in frames and f"{under}/br0" in frames, frames
    assert any(h["seen"] and h["netns"] == under and h["device"] == "br0" for h in doc["hops"]), doc["hops"]
    subprocess.run(shlex.split(lost["fix"]), check=True, timeout=10)  # the fix, as a user types it
    code, doc = traced(lab, "pa", "pb")
    assert code == 0 and doc["delivered"], doc.get("lost")


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_nodes_ping_to_a_cluster_ip(labs, mode):
    lab = labs.name("te")
    labs.up(SERVICE.format(lab=lab, mode=mode))
    node, under = f"{lab}-n1", f"{lab}-underlay"
    svc = json.loads(netlab("get", "svc", "--lab", lab, "-o", "json").stdout)
    cip = next(s["cluster_ip"] for s in svc["items"] if s["name"] == "web")
    real = in_netns(node, "ping", "-c1", "-W1", cip)  # what a user's ping gets
    assert real.returncode != 0, real.stdout
    code, doc = traced(lab, "n1", cip, "--proto", "icmp")
    assert code == 1 and not doc["delivered"] and doc["lost"]["fix"] is None, doc["lost"]
    lost = doc["lost"]
    if mode == "iptables":
        assert "Unreachable" not in real.stdout and " 0 received" in real.stdout, real.stdout
        assert in_netns(under, "sysctl", "-n", "net.ipv4.ip_forward", check=True).stdout.strip() == "0"
        assert lost["netns"] == under and "A ClusterIP answers no ping in a real cluster either: nothing to fix" \
            in lost["reason"], lost
        assert doc["refused"] is None  # nothing answered it
        return
    assert "Destination Port Unreachable" in real.stdout, real.stdout
    listed = in_netns(node, "nft", "list", "chain", "ip", "kube-proxy", "cluster-ips-check", check=True).stdout
    assert REJECT in listed, listed
    hop = row(doc, lost["hop"])
    assert (lost["netns"], hop["kind"], hop["facts"]["reject_rule"]) == (node, "dnat", REJECT), hop
    assert f"`{REJECT}`" in lost["reason"] and "no ARP entry" not in lost["reason"], lost
    ip = json.loads(in_netns(node, "ip", "-j", "route", "get", cip, check=True).stdout)[0]["prefsrc"]
    assert f"ICMP port unreachable from n1's own address {ip}" in lost["reason"], lost
    # the capture heard the kernel's answer, as the real ping did
    assert any(e["from"] == ip and "port unreachable" in e["text"] for e in doc["icmp_errors"]), doc["icmp_errors"]
    # answered at once: REFUSED at that row naming the rule and the node, not LOST (it was, refused null), as a
    # Service without endpoints is; a pod's ping too, rejected in the node's filter-forward
    said = (f"{cip} is Service default/web's ClusterIP and no port of it matches this ICMP echo: node n1's "
            f"kube-proxy rule `{REJECT}` (chain cluster-ips-check) rejected it at once with an ICMP port unreachable")
    assert doc["refused"].startswith(said), doc["refused"]
    real = in_netns(f"{lab}-w1", "ping", "-c1", "-W1", cip)
    assert real.returncode != 0 and "Destination Port Unreachable" in real.stdout, real.stdout
    code, doc = traced(lab, "w1", cip, "--proto", "icmp")
    assert code == 1 and doc["refused"].startswith(said) and doc["lost"]["netns"] == node, doc["lost"]
    assert "filter-forward jumps to cluster-ips-check" in doc["lost"]["reason"], doc["lost"]


def test_a_cluster_ip_ping_dies_at_the_internet_gateway_which_answers_net_unreachable(labs):
    """With an `internet:` section the nodes' gateway is the internet's (a router, ip_forward 1), not the
    underlay's: it has no route to a ClusterIP and answers the echo with an ICMP net unreachable from its address,
    as a real ping from the node and from a pod shows. trace said only "no route to ... in GATEWAY"; it says the
    ClusterIP answers no ping, what the gateway answers (the capture heard it), and names no fix. The rest of the
    words are those of the iptables-mode test above (a node's ping with no internet: the underlay drops it)."""
    lab = labs.name("tg")
    text = SERVICE.format(lab=lab, mode="iptables").replace("services:", "  - {name: c1, node: n1}\nservices:")
    labs.up(text + INTERNET)
    gateway = f"{lab}-gateway"
    svc = json.loads(netlab("get", "svc", "--lab", lab, "-o", "json").stdout)
    cip = next(s["cluster_ip"] for s in svc["items"] if s["name"] == "web")
    assert in_netns(gateway, "sysctl", "-n", "net.ipv4.ip_forward", check=True).stdout.strip() == "1"
    [eth0] = json.loads(in_netns(gateway, "ip", "-j", "addr", "show", "eth0", check=True).stdout)
    addr = eth0["addr_info"][0]["local"]
    # the kernel sends such an error at most once a second to a sender (both come from n1's address here): let it
    # answer every packet, so each ping and each trace hears its own
    in_netns(gateway, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
    for src, ns in (("n1", f"{lab}-n1"), ("c1", f"{lab}-c1")):
        real = in_netns(ns, "ping", "-c1", "-W1", cip)  # what a user's ping gets
        assert real.returncode != 0 and f"From {addr} icmp_seq=1 Destination Net Unreachable" in real.stdout, \
            real.stdout
        code, doc = traced(lab, src, cip, "--proto", "icmp")
        lost = doc["lost"]
        assert code == 1 and not doc["delivered"] and lost["fix"] is None, lost
        assert (lost["netns"], lost["device"]) == (gateway, "eth0"), lost
        assert "A ClusterIP answers no ping in a real cluster either: nothing to fix" in lost["reason"], lost
        assert f"which answers an ICMP net unreachable from its address {addr} on eth0 (ping: Destination Net " \
               "Unreachable; at most one a second to a sender" in lost["reason"], lost
        assert any(e["from"] == addr and e["text"] == "destination unreachable: net unreachable"
                   for e in doc["icmp_errors"]), doc["icmp_errors"]
