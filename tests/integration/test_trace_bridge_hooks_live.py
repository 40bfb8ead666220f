"""What trace says iptables does to a frame on a bridge, a node's own source to a Service, and a bridged DNAT's
route row, checked against the kernel of a real lab (root).

- br_netfilter runs the IP hooks (PREROUTING, FORWARD, POSTROUTING) only on a frame that came into the bridge by a
  port: a frame the node routes out of cni0 (from flannel.1) or sends itself passed them once as an IP packet.
  Counting rules for the packet's destination in n1's raw PREROUTING, filter FORWARD and mangle POSTROUTING
  count what the kernel ran; the trace's bridge row said PREROUTING, FORWARD and POSTROUTING ran again on every
  frame it switched.
- A node's own packet to a ClusterIP is sent from the source its route to the ClusterIP picks (a real socket's
  getsockname), not from the address the masquerade gives it later.
- A pod's packet DNATed to a pod behind the same bridge goes back into the bridge: it arrives with TTL 64 and the
  node's Ip ForwDatagrams stays put; the route row said "(forwarded)".
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, ip_json, lab_up, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - name: a
    node: n1
    labels: {{app: web}}
    containers: [{{name: http, ports: [{{containerPort: 8080, protocol: TCP}}]}}]
  - {{name: b, node: n1}}
  - {{name: c, node: n2}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
"""
MARK = "netlab-test-count"
HOOKS = (("raw", "PREROUTING"), ("filter", "FORWARD"), ("mangle", "POSTROUTING"))
PORT_TO_PORT = ["PREROUTING", "FORWARD", "POSTROUTING"]  # what br_netfilter runs on a frame it bridges


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    lab = unique_lab("tq")
    path = write_topology(tmp_path_factory.mktemp("brhooks"), TOPOLOGY.format(lab=lab), f"{lab}.yaml")
    with lab_up(path, lab):
        yield lab


def _ip(netns: str) -> str:
    return in_netns(netns, "ip", "-4", "-br", "addr", "show", "eth0", check=True).stdout.split()[2].split("/")[0]


def _restore(netns: str, op: str, dst: str) -> None:
    """Add (-I, first in the chain: nothing before it ends the walk) or delete (-D) the counting rules."""
    text = "".join(f"*{table}\n{op} {chain} {'1 ' if op == '-I' else ''}-d {dst}/32 -p icmp -m comment --comment "
                   f"{MARK}\nCOMMIT\n" for table, chain in HOOKS)
    proc = subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"], input=text, text=True,
                          capture_output=True, timeout=20)
    assert proc.returncode == 0, proc.stderr


def _counts(netns: str) -> tuple[int, ...]:
    out = []
    for table, chain in HOOKS:
        lines = [line for line in in_netns(netns, "iptables-save", "-c", "-t", table, check=True).stdout.splitlines()
                 if line.split(" ", 2)[1:2] == ["-A"] and f" {chain} " in line and MARK in line]
        assert len(lines) == 1, lines
        out.append(int(lines[0][1:].split(":")[0]))
    return tuple(out)


# What the IP layer of n1 runs on the packet by itself: raw PREROUTING, filter FORWARD, mangle POSTROUTING
IP_LAYER = {"local": (0, 0, 1), "routed": (1, 1, 1), "port-to-port": (0, 0, 0)}


@pytest.mark.parametrize("src, way", [("n1", "local"), ("c", "routed"), ("b", "port-to-port")])
def test_the_bridge_row_says_the_hooks_the_kernel_runs_on_the_frame(live, src, way):
    n1 = f"{live}-n1"
    a = _ip(f"{live}-a")
    _restore(n1, "-I", a)
    try:
        before = _counts(n1)
        rc, d = traced(live, src, "a")
        after = _counts(n1)
    finally:
        _restore(n1, "-D", a)
    assert rc == 0 and d["delivered"], d.get("lost")
    [row] = [h for h in d["hops"] if h["kind"] == "bridge" and h["netns"] == n1 and "port" in h["facts"]
             and h["direction"] == "forward"]
    claimed = PORT_TO_PORT if "runs iptables PREROUTING, FORWARD and POSTROUTING" in row["decision"] else []
    ran = tuple(x - y for x, y in zip(after, before))
    # the kernel ran the IP layer's pass, plus one more of each hook the row says br_netfilter runs on the bridge
    assert ran == tuple(n + (chain in claimed) for n, (_, chain) in zip(IP_LAYER[way], HOOKS)), (ran, row["decision"])
    assert row["facts"]["bridge_hooks"] == claimed, row
    if way != "port-to-port":
        words = "sent its own packet" if way == "local" else "routed the packet"
        assert f"the IP layer {words} out of cni0" in row["decision"], row["decision"]


def test_a_nodes_service_packet_is_sent_from_its_route_lookups_source(live):
    n2 = f"{live}-n2"
    [route] = ip_json("route", "get", "10.96.0.20", netns=n2)
    probe = ("import socket; s = socket.create_connection(('10.96.0.20', 80), timeout=10); "
             "print(s.getsockname()[0]); s.close()")
    kernel = in_netns(n2, "python3", "-I", "-c", probe, check=True).stdout.strip()  # the source a socket gets
    assert kernel == route["prefsrc"]
    rc, d = traced(live, "n2", "svc/web", "--port", "80")
    assert rc == 0 and d["delivered"], d.get("lost")
    assert d["source"]["ip"] == kernel, d["source"]
    first = d["hops"][0]
    assert first["kind"] == "route" and first["facts"]["source_route"], first
    assert first["decision"].startswith(f"route get 10.96.0.20 → via {route['gateway']} dev {route['dev']} src "
                                        f"{kernel}:"), first["decision"]
    snat = next(h for h in d["hops"] if h["kind"] == "snat")
    assert snat["facts"]["before"].startswith(f"{kernel}:") and not snat["facts"]["after"].startswith(kernel)


def _forwarded(netns: str) -> int:
    lines = [line.split() for line in in_netns(netns, "cat", "/proc/net/snmp", check=True).stdout.splitlines()
             if line.startswith("Ip: ")]
    return int(lines[1][lines[0].index("ForwDatagrams")])


@pytest.mark.parametrize("src", ["b", "c"])
def test_a_bridged_dnat_is_not_ip_forwarded_and_its_route_row_says_so(live, src):
    n1 = f"{live}-n1"
    before = _forwarded(n1)
    rc, d = traced(live, src, "svc/web", "--port", "80")
    forwarded = _forwarded(n1) - before
    assert rc == 0 and d["delivered"], d.get("lost")
    [route] = [h for h in d["hops"] if h["kind"] == "route" and h["netns"] == n1 and h["direction"] == "forward"
               and h["facts"].get("oif") == "cni0"]
    ttl = next(h["facts"]["ttl"] for h in d["hops"] if h["kind"] == "deliver" and h["direction"] == "forward")
    if src == "b":  # DNATed at cni0's port to a, behind cni0 too: back into the bridge
        assert ttl == 64 and forwarded == 0, (ttl, forwarded)
        assert "(forwarded)" not in route["decision"], route["decision"]
        assert "it is not IP-forwarded, and its TTL is not decremented" in route["decision"], route["decision"]
        assert route["facts"]["bridged_dnat"] is True, route["facts"]
    else:  # DNATed in n2, routed by n2 and by n1 (from flannel.1): forwarded, TTL 64 - 2
        assert ttl == 62 and forwarded >= 1, (ttl, forwarded)
        assert "(forwarded)" in route["decision"] and "bridged_dnat" not in route["facts"], route["decision"]
