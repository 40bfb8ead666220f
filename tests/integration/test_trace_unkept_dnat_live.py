"""A Service packet the node DNATed that died there before conntrack kept its entry, on a real lab, both modes (root).

`netlab break ip-forward-off` (node-1), then `netlab trace client svc/web` and `client svc/kube-dns`; or the
kube-dns pod's bridge port down or disabled, then `netlab trace client svc/kube-dns` from the client on the same
node. Either way the node DNATs the packet and drops it before conntrack confirms the entry: the trace said "it
was not DNATed here", followed it un-DNATed to the gateway and ended "look at the firewall" with no fix. Now the
lost row is the node's DNAT with the real cause and its fix, and the fix, run as printed, brings real traffic
back. And with `netlab break conntrack-stale-entry` the DNAT row says the stale entry's DNAT is conntrack's, not
the Service's pick.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from breaking import SERVICES, dns_answers
from helpers import in_netns, lab_down_here, netlab, unique_lab, wait_for, up_here
from netlab import Lab
from netlab.breaks.changes import STALE_SPORT
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root

CONNECT = """
import socket, sys
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.close()
"""


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def lab(request):
    name = unique_lab("tb")
    extra = "cluster: {kubeProxyMode: nftables}\n" if request.param == "nftables" else ""
    text = "\n".join(f"name: {name}" if line.startswith("name:") else line
                     for line in Path(SERVICES).read_text().splitlines()) + "\n" + extra
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "topo.yaml")
        Path(path).write_text(text)
        try:
            Lab.up(path)  # the tests are of trace and of the fixes it prints, not of up
            yield name, path
        finally:
            lab_down_here(name)


def trace(lab: str, *args: str) -> dict:
    proc = netlab("trace", "--lab", lab, *args, "-o", "json", check=False, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def connects(lab: str, n: int) -> bool:
    """``n`` real TCP connections from the client to web's ClusterIP (each to an endpoint picked at random)."""
    return in_netns(f"{lab}-client", sys.executable, "-c", CONNECT, "10.96.0.20", "80", str(n)).returncode == 0


def repaired(name: str, path: str) -> None:
    """The lab as planned again for the next test (in this process: the tests are not of up)."""
    up_here(path)
    assert connects(name, 4)


def test_ip_forward_off_is_named_at_the_dnat_and_its_fix_brings_the_services_back(lab):
    name, path = lab
    node = f"{name}-node-1"
    model = running_lab(name).resolved()
    client = model.pod("client")
    try:
        Lab(name).break_("ip-forward-off", "node-1")  # `netlab break`'s call; the test is of trace
        assert in_netns(node, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
        assert not connects(name, 1) and not dns_answers(model, client, 0)
        for dst in ("svc/web", "svc/kube-system/kube-dns"):  # an endpoint on each node; the only one, on the client's node
            d = trace(name, "client", dst)
            lost = d["lost"]
            assert lost["netns"] == node and lost["device"] == "cni0", lost
            assert "no conntrack entry for this packet: it was dropped before conntrack kept one; the rules DNATed " \
                   "it to " in lost["reason"], lost
            assert f"but net.ipv4.ip_forward = 0 in {node}: the node does not forward, so the DNATed packet in on " \
                   "cni0 is dropped at the forwarding decision" in lost["reason"], lost
            assert lost["reason"].endswith("; so is every packet the node would forward, not only this one: every "
                                           "flow between its pods and other nodes' pods, every ClusterIP flow "
                                           "from its pods, whichever endpoint (DNATed, then routed), its pods' "
                                           "egress to internet hosts, and every NodePort or LoadBalancer flow from "
                                           "outside that comes in on it"), lost
            assert "not DNATed here" not in lost["reason"] and "firewall" not in lost["reason"], lost
            assert lost["fix"] == f"ip netns exec {node} sysctl -w net.ipv4.ip_forward=1", lost
            row = next(h for h in d["hops"] if h["index"] == lost["hop"])
            assert row["kind"] == "dnat" and row["facts"]["dropped_here"] is True, row
        subprocess.run(shlex.split(lost["fix"]), check=True, timeout=10)  # the fix, as a user types it
        assert in_netns(node, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        assert connects(name, 8) and dns_answers(model, client, 0)
    finally:
        repaired(name, path)


@pytest.mark.parametrize("scenario", ["bridge-port-down", "bridge-port-disabled"])
def test_the_endpoints_blocked_bridge_port_is_named_at_the_dnat_and_its_fix_brings_dns_back(lab, scenario):
    name, path = lab
    node = f"{name}-node-1"
    model = running_lab(name).resolved()
    client = model.pod("client")
    port = next(link["ifname"] for link in json.loads(subprocess.run(
        ["ip", "-n", node, "-j", "link", "show", "master", "cni0"], capture_output=True, text=True,
        check=True).stdout) if link.get("link_netnsid") is not None and _peer_is(node, link, f"{name}-kube-dns"))
    try:
        Lab(name).break_(scenario, "kube-dns")
        # As on a node that has not talked to kube-dns yet: the node must ask for its MAC, and nothing answers, so
        # the DNATed packet waits for the answer and is dropped unconfirmed. (With the MAC known, the bridge floods
        # the frame to its other ports, which confirms the entry: the trace then follows the DNAT to the port.)
        subprocess.run(["ip", "-n", node, "neigh", "flush", "to", str(model.pod("kube-dns").ip), "dev", "cni0"],
                       check=True)
        d = trace(name, "client", "svc/kube-system/kube-dns")
        assert not dns_answers(model, client, 0)
        lost = d["lost"]
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert lost["netns"] == node and row["kind"] == "dnat" and row["facts"]["dropped_here"] is True, lost
        assert "no conntrack entry for this packet: it was dropped before conntrack kept one; the rules DNATed it " \
               f"to {model.pod('kube-dns').ip}:53 (kube-dns" in lost["reason"], lost
        assert f"the bridge port {port} of cni0 in {node}" in lost["reason"], lost
        assert "not DNATed here" not in lost["reason"] and "firewall" not in lost["reason"], lost
        assert lost["fix"] == (f"ip -n {node} link set {port} up" if scenario == "bridge-port-down" else
                               f"bridge -n {node} link set dev {port} state forwarding"), lost
        subprocess.run(shlex.split(lost["fix"]), check=True, timeout=10)
        # The kernel activates a link's queue once its carrier is back (linkwatch, up to a second later), and says
        # so by its operstate: until then it drops what leaves by it, a user typing the fix does not see it. The
        # bridge turns a port that was down to forwarding on that same event (br_port_carrier_check), so after
        # `link set up` the port reads "disabled" until linkwatch has run.
        assert wait_for(lambda: _port_state(node, port) == "forwarding" and _up(node, port)
                        and _up(f"{name}-kube-dns", "eth0")), _port_state(node, port)
        # A packet sent while the node's resolution begun before the fix is still INCOMPLETE waits on it and is
        # dropped when its last probe (sent while the port was down) goes unanswered: a user's query right after
        # the fix may be lost so. Once the kernel has given that resolution up, a new packet asks again.
        ip = str(model.pod("kube-dns").ip)
        assert wait_for(lambda: "INCOMPLETE" not in subprocess.run(
            ["ip", "-n", node, "neigh", "show", ip, "dev", "cni0"], capture_output=True, text=True).stdout)
        assert dns_answers(model, client, 0)
    finally:
        repaired(name, path)


def _port_state(netns: str, dev: str) -> str:
    return json.loads(subprocess.run(["bridge", "-n", netns, "-j", "link", "show", "dev", dev], capture_output=True,
                                     text=True, check=True).stdout)[0]["state"]


def _up(netns: str, dev: str) -> bool:
    return json.loads(subprocess.run(["ip", "-n", netns, "-j", "link", "show", "dev", dev], capture_output=True,
                                     text=True, check=True).stdout)[0]["operstate"] == "UP"


def _peer_is(node: str, link: dict, pod_ns: str) -> bool:
    """``link`` (a port of node's cni0) is the veth whose peer is eth0 of ``pod_ns``."""
    peer = json.loads(subprocess.run(["ip", "-n", pod_ns, "-j", "link", "show", "dev", "eth0"], capture_output=True,
                                     text=True, check=True).stdout)[0]
    return peer.get("link_index") == link["ifindex"]


def test_a_stale_entrys_dnat_is_said_to_be_conntracks_and_its_fix_brings_the_query_back(lab):
    name, path = lab
    node = f"{name}-node-1"
    model = running_lab(name).resolved()
    client = model.pod("client")
    try:
        Lab(name).break_("conntrack-stale-entry")
        assert not dns_answers(model, client, STALE_SPORT)
        d = trace(name, "client", "svc/kube-system/kube-dns", "--sport", str(STALE_SPORT))
        row = next(h for h in d["hops"] if h["kind"] == "dnat" and h["netns"] == node)
        assert "conntrack's existing entry for this flow DNATs it to " in row["decision"], row
        assert "not kube-proxy's rules for Service kube-system/kube-dns:dns (they never saw the packet)" \
               in row["decision"] and "picked" not in row["decision"], row
        assert row["facts"]["stale_entry"] is True and d["lost"]["hop"] == row["index"], d["lost"]
        subprocess.run(shlex.split(d["lost"]["fix"]), check=True, timeout=10)
        assert dns_answers(model, client, STALE_SPORT)
    finally:
        repaired(name, path)
