"""Core acceptance (issue 2), checked with the kernel's own view and real packets."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from breaking import assert_as_planned
from helpers import (NETLAB, in_netns, ip, ip_json, lab_namespaces, netlab, probe_failures, two_node,
                     two_node_topology)

pytestmark = pytest.mark.root


def ping_ttl(netns: str, dst: str) -> int | None:
    proc = in_netns(netns, "ping", "-c1", "-W1", dst)
    m = re.search(r"ttl=(\d+)", proc.stdout)
    return int(m.group(1)) if m else None


def kernel_view(lab: str) -> dict:
    """Links (with details), addresses and routes of a lab, minus what the kernel changes by
    itself: the bridges' running timers and operstate (a bridge goes UNKNOWN -> UP as its
    ports come up), and operstate's shadow in the flags: ``ip`` prints NO-CARRIER for a link
    that is up but not yet RUNNING, and the kernel's linkwatch sets a bridge RUNNING up to a
    second after its first port's carrier (later on a loaded machine)."""

    def strip(obj):
        if isinstance(obj, dict):
            return {k: [f for f in v if f != "NO-CARRIER"] if k == "flags" else strip(v) for k, v in obj.items()
                    if "timer" not in k and k != "operstate"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return {ns: (strip(ip_json("-d", "link", netns=ns)), strip(ip_json("addr", netns=ns)), ip("route", netns=ns).stdout)
            for ns in lab_namespaces(lab)}


def test_vxlan_lab_matches_flannel(netlab_factory):
    lab = netlab_factory(two_node()).name
    node, node2 = f"{lab}-minikube", f"{lab}-minikube-m02"

    # flannel.1: VNI 1, dstport 8472, local node IP, nolearning, MTU 1450, /32 address.
    (vx,) = ip_json("-d", "link", "show", "flannel.1", netns=node)
    data = vx["linkinfo"]["info_data"]
    assert vx["mtu"] == 1450
    assert data["id"] == 1 and data["port"] == 8472 and data["local"] == "192.168.122.215"
    assert data["learning"] is False
    assert "vxlan id 1" in ip("-d", "link", "show", "flannel.1", netns=node).stdout
    addrs = ip_json("addr", "show", "flannel.1", netns=node)[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"] == [("10.244.0.0", 32)]

    # Per remote node: PERMANENT ARP, self permanent FDB to the node IP, onlink route.
    (neigh,) = [n for n in ip_json("neigh", "show", "dev", "flannel.1", netns=node) if n["dst"] == "10.244.1.0"]
    remote_mac = ip_json("link", "show", "flannel.1", netns=node2)[0]["address"]
    assert neigh["state"] == ["PERMANENT"] and neigh["lladdr"] == remote_mac
    fdb = json.loads(subprocess.run(["bridge", "-n", node, "-j", "fdb", "show", "dev", "flannel.1"],
                                    capture_output=True, text=True, check=True).stdout)
    assert any(e["mac"] == remote_mac and e.get("dst") == "192.168.122.7" and "self" in e["flags"]
               and e["state"] == "permanent" for e in fdb), fdb
    routes = ip("route", "show", "10.244.1.0/24", netns=node).stdout
    assert "10.244.1.0/24 via 10.244.1.0 dev flannel.1" in routes and "onlink" in routes

    # Pods: MTU 1450, default via cni0, the connected /24.
    pod = f"{lab}-fedora-1"
    assert ip_json("link", "show", "eth0", netns=pod)[0]["mtu"] == 1450
    assert "default via 10.244.0.1 dev eth0" in ip("route", netns=pod).stdout
    assert ip("-n", node, "-o", "addr", "show", "cni0").stdout.count("10.244.0.1/24") == 1
    for sysctl, want in (("net.ipv4.ip_forward", "1"),):
        assert in_netns(node, "sysctl", "-n", sysctl).stdout.strip() == want

    # Real packets: two routers across nodes (TTL 62), none on one bridge (TTL 64).
    assert ping_ttl(pod, "10.244.1.3") == 62
    assert ping_ttl(pod, "10.244.0.3") == 64
    # A node's own connection to the other node's pod leaves from flannel.1's address, inside the pod network:
    # Flannel does not masquerade it, and its port arrives as sent (with host-gw it gets a new one).
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    report = json.loads(proc.stdout)
    rows = report["probes"]
    assert proc.returncode == 0, probe_failures(report)
    across = next(r for r in rows if (r["source"], r["destination"], r["protocol"]) == ("minikube", "fedora-2", "tcp"))
    assert across["seen_client_address"] == across["local_address"] and \
        across["local_address"].startswith("10.244.0.0:"), across


def test_underlay_carries_vxlan_vni_1(netlab_factory):
    """A capture on the underlay shows UDP 8472 carrying VXLAN VNI 1 with the pod IPs inside."""
    from scapy.all import IP, UDP, VXLAN, rdpcap  # noqa: PLC0415 - tests only

    lab = netlab_factory(two_node(pods_per_node=1)).name
    pcap = f"/tmp/{lab}.pcap"
    underlay = f"{lab}-underlay"
    cap = subprocess.Popen(["ip", "netns", "exec", underlay, "tcpdump", "-i", "br0", "-U", "-c", "2", "-w", pcap,
                            "udp", "port", "8472"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert cap.stderr is not None
        while b"listening on br0" not in (line := cap.stderr.readline()):  # its socket is open
            assert line, "tcpdump ended before it listened"
        for _ in range(3):
            in_netns(f"{lab}-fedora-1", "ping", "-c1", "-W1", "10.244.1.3")
            if cap.poll() is not None:
                break
        cap.wait(timeout=5)
        packets = rdpcap(pcap)
    finally:
        if cap.poll() is None:
            cap.kill()
        if os.path.exists(pcap):
            os.unlink(pcap)
    outer = packets[0]
    assert outer[UDP].dport == 8472
    vxlan = VXLAN(bytes(outer[UDP].payload))
    assert vxlan.vni == 1
    inner = vxlan[IP]
    assert {inner.src, inner.dst} == {"10.244.0.2", "10.244.1.3"}
    assert {outer[IP].src, outer[IP].dst} == {"192.168.122.215", "192.168.122.7"}


@pytest.mark.netlab(two_node(mode="host-gw"))
def test_host_gw_routes_without_encapsulation(netlab_lab):
    lab = netlab_lab.name
    node, pod = f"{lab}-minikube", f"{lab}-fedora-1"
    links = [l["ifname"] for l in ip_json("link", netns=node)]
    assert "flannel.1" not in links
    assert "10.244.1.0/24 via 192.168.122.7 dev eth0" in ip("route", netns=node).stdout
    assert ip_json("link", "show", "eth0", netns=pod)[0]["mtu"] == 1500
    assert ping_ttl(pod, "10.244.1.3") == 62
    assert ping_ttl(pod, "10.244.0.3") == 64
    # A node's own connection to the other node's pod leaves with its eth0 address, outside the pod network, and
    # Flannel's last FLANNEL-POSTRTG rule masquerades it: the address stays, the port is new (--random-fully); to
    # its own pods it is not masqueraded. probe passes (it flagged every such flow as "source port translated").
    proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
    report = json.loads(proc.stdout)
    rows = report["probes"]
    assert proc.returncode == 0, probe_failures(report)
    tcp = {r["destination"]: r for r in rows if r["source"] == "minikube" and r["protocol"] == "tcp"}
    across, own = tcp["fedora-2"], tcp["fedora-1"]
    assert across["seen_client_address"].split(":")[0] == across["local_address"].split(":")[0] == "192.168.122.215"
    assert own["seen_client_address"] == own["local_address"], own
    masq = subprocess.run(["ip", "netns", "exec", node, "iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"],
                          capture_output=True, text=True, check=True).stdout
    assert '! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully' \
        in masq, masq


def test_up_twice_changes_nothing_and_down_twice_is_fine(labs, tmp_path):
    lab = labs.name()
    path = labs.up_here(two_node_topology(lab))
    before = kernel_view(lab)
    second = netlab("up", "-t", path, "-o", "json")
    assert json.loads(second.stdout)["changed"] is False
    after = kernel_view(lab)
    assert before == after
    assert_as_planned(lab)
    netlab("down", "--lab", lab)
    assert lab_namespaces(lab) == []
    assert "not up" in netlab("down", "--lab", lab).stdout


def test_up_converges_added_and_removed_pods(labs, tmp_path):
    lab = labs.name()
    text = two_node_topology(lab, pods_per_node=1)
    labs.up_here(text)
    grown = text + "  - {name: extra, node: minikube}\n"
    path, out = labs.up(grown)
    assert f"{lab}-extra" in lab_namespaces(lab)
    assert ping_ttl(f"{lab}-extra", "10.244.1.3") == 62  # allocated 10.244.0.3, routed like the others
    assert_as_planned(lab)
    labs.up(text)
    assert f"{lab}-extra" not in lab_namespaces(lab)
    assert_as_planned(lab)
    nodes = [l["ifname"] for l in ip_json("link", netns=f"{lab}-minikube")]
    assert len([n for n in nodes if n.startswith("veth")]) == 1  # the removed pod's veth is gone too


def test_status_names_drift_and_up_repairs_it(labs):
    lab = labs.name()
    text = two_node_topology(lab, pods_per_node=1).replace("ip: 10.244.0.2}", "ip: 10.244.0.2, labels: {app: web}}")
    text += "services: [{name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}]\n"
    path = labs.up_here(text)
    node, node2 = f"{lab}-minikube", f"{lab}-minikube-m02"
    for _ in range(20):  # no drift where there is none, read after read
        assert_as_planned(lab)
    # A DNAT rule of the Service, deleted by hand.
    saved = in_netns(node, "iptables-save", "-t", "nat", check=True).stdout
    dnat = next(line for line in saved.splitlines() if "-j DNAT" in line and "10.244.0.2:8080" in line)
    in_netns(node, "iptables", "-t", "nat", *shlex.split(dnat.replace("-A ", "-D ", 1)), check=True)
    veth = next(l["ifname"] for l in ip_json("link", netns=node) if l["ifname"].startswith("veth"))
    ip("link", "del", veth, netns=node)
    ip("route", "del", "10.244.1.0/24", netns=node)
    mac = ip_json("link", "show", "flannel.1", netns=node)[0]["address"]
    subprocess.run(["bridge", "-n", node2, "fdb", "del", mac, "dev", "flannel.1", "dst", "192.168.122.215", "self"],
                   check=True)
    in_netns(node2, "sysctl", "-qw", "net.ipv4.ip_forward=0", check=True)
    in_netns(f"{lab}-fedora-2", "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", check=True)
    # Read by forked readers too, as a big lab is: a pod is compared by whichever reader read it, a node
    # (its veths end in the pods) once all are read.
    st = netlab("status", "--lab", lab, check=False, env={"NETLAB_TEST_READ_SHARE": "1"})
    assert st.returncode == 1
    assert st.stdout == netlab("status", "--lab", lab, check=False).stdout
    text = st.stdout
    assert f"sysctl net.ipv4.conf.all.rp_filter in {lab}-fedora-2 (is 1, want 0)" in text
    assert f"missing: route default via 10.244.0.1 dev eth0 in {lab}-fedora-1" in text  # its veth went
    ip("netns", "del", f"{lab}-fedora-1")  # the state still lists it: read ahead, it cannot be read
    st = netlab("status", "--lab", lab, check=False, env={"NETLAB_TEST_READ_SHARE": "1"})
    assert st.returncode == 1 and f"missing: namespace {lab}-fedora-1" in st.stdout and not st.stderr
    assert st.stdout == netlab("status", "--lab", lab, check=False).stdout
    assert f"link {veth} in {node}" in text
    assert "route 10.244.1.0/24" in text
    assert f"fdb {mac}" in text
    assert "net.ipv4.ip_forward" in text
    assert "iptables nat rules" in text and "DNAT" in text
    netlab("--debug", "up", "-t", path)
    assert_as_planned(lab)
    assert ping_ttl(f"{lab}-fedora-1", "10.244.1.3") == 62


def test_kill_during_up_then_down_leaves_nothing(labs, tmp_path):
    lab = labs.name()
    path = str(tmp_path / "k.yaml")
    with open(path, "w") as fh:
        fh.write(two_node_topology(lab, pods_per_node=2))
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_FAULT_AT": "9", "NETLAB_FAULT_MODE": "kill"})
    assert proc.returncode == -signal.SIGKILL
    assert lab_namespaces(lab), "the fault should have struck after some namespaces existed"
    netlab("down", "--lab", lab)
    assert lab_namespaces(lab) == []


def test_other_netlab_waits_or_names_the_holder(labs):
    lab = labs.name()
    path = labs.up_here(two_node_topology(lab, pods_per_node=1))
    from netlab.realize.lab_lock import LabLock

    with LabLock(lab, "test holder"):
        proc = netlab("status", "--lab", lab, check=False)  # status reads, it does not lock
        assert proc.returncode == 0
        busy = netlab("up", "-t", path, "--wait", "0.3", check=False)
    assert busy.returncode == 3
    assert f"pid {os.getpid()} (test holder)" in busy.stderr


def test_cli_refuses_non_root_cleanly(tmp_path):
    """Not root: exit 3 with what to do, no traceback."""
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *NETLAB, "up"],
                          capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "sudo" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_and_plan_need_no_root(tmp_path):
    for args in (["validate"], ["plan"], ["plan", "-o", "json"]):
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *NETLAB, *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert "flannel.1" in proc.stdout
    assert sys.executable


def test_up_converges_added_and_removed_nodes(labs):
    lab = labs.name()
    two = f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n2}}]\n"
    three = (f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}, {{name: n3}}]\n"
             f"pods: [{{name: a, node: n1}}, {{name: b, node: n2}}, {{name: c, node: n3}}]\n")
    labs.up_here(two)
    labs.up(three)
    assert_as_planned(lab)
    # The old nodes learned the new one: ARP, FDB and route to its pod CIDR, and traffic flows.
    assert "10.244.2.0/24 via 10.244.2.0 dev flannel.1" in ip("route", netns=f"{lab}-n1").stdout
    assert ping_ttl(f"{lab}-a", "10.244.2.2") == 62
    labs.up(two)
    assert f"{lab}-n3" not in lab_namespaces(lab) and f"{lab}-c" not in lab_namespaces(lab)
    assert "10.244.2.0/24" not in ip("route", netns=f"{lab}-n1").stdout
    assert ip("neigh", "show", "10.244.2.0", netns=f"{lab}-n1").stdout.strip() == ""
    assert_as_planned(lab)
    # A node's last pod removed: its bridge stays (as the bridge plugin's cni0 after its last DEL), left without
    # ports, at a portless bridge's MTU from the kernel (1500), which is no drift (status said "mtu 1500 (want
    # 1450)" after it, and an up set it by hand)
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\npods: [{{name: a, node: n1}}]\n")
    assert f"{lab}-b" not in lab_namespaces(lab)
    assert_as_planned(lab)
    assert ip_json("link", "show", "cni0", netns=f"{lab}-n2")[0]["mtu"] == 1500
