"""trace on two broken pod networks (root), its words checked, then its printed fix run and real traffic seen again:

- rp-filter-strict: the peer (minikube-m02) routes minikube's pod CIDR straight over the underlay while minikube,
  whose route back leaves by flannel.1, has strict rp_filter. The packet is lost at minikube's eth0 by rp_filter,
  the sysctl's fix first, the route's with it (trace blamed the route, saying minikube, the destination's own node,
  "masquerades the pod traffic it forwards and drops as INVALID a reply", and its fix left rp_filter strict);
- vxlan-wrong-vni: minikube's flannel.1 is made again with VNI 2. trace names minikube as the node whose VNI is not
  the plan's, from either direction, and its fix makes the device again (it printed no fix, and pointed at the
  healthy sender).
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from breaking import DEFAULT
from helpers import in_netns, lab_up, netlab, unique_lab
from netlab.errors import display_path, netlab_command

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("tv")
    path = tmp_path_factory.mktemp(name) / "topo.yaml"
    text = open(DEFAULT, encoding="utf-8").read()
    path.write_text("\n".join(f"name: {name}" if x.startswith("name:") else x for x in text.splitlines()) + "\n")
    with lab_up(str(path), name):
        yield name, str(path)


def pings(src: str, ip: str) -> bool:
    return in_netns(src, "ping", "-c1", "-W1", ip).returncode == 0


def traced(lab: str, src: str, dst: str) -> tuple[int, dict]:
    tr = netlab("trace", "--lab", lab, src, dst, "-o", "json", check=False)
    out = json.loads(tr.stdout)
    return tr.returncode, out.get("lost") or out.get("reply_lost")


def route(ns: str, dst: str) -> tuple[str | None, str]:
    r = json.loads(subprocess.run(["ip", "-j", "-n", ns, "route", "show", dst], capture_output=True, text=True,
                                  check=True).stdout)[0]
    return r.get("gateway"), r["dev"]


def test_rp_filter_strict_is_lost_at_the_nodes_eth0_and_its_fix_puts_both_back(lab):
    name, path = lab
    node, peer = f"{name}-minikube", f"{name}-minikube-m02"
    netlab("break", "rp-filter-strict", "--lab", name)
    try:
        assert in_netns(node, "sysctl", "-n", "net.ipv4.conf.all.rp_filter").stdout.strip() == "1"
        assert route(peer, "10.244.0.0/24") == ("192.168.122.215", "eth0")
        assert not pings(f"{name}-fedora-1", "10.244.1.3")
        fixes = set()
        for src, dst in (("fedora-1", "fedora-2"), ("fedora-2", "fedora-1")):
            rc, lost = traced(name, src, dst)
            assert rc == 1 and (lost["netns"], lost["device"]) == (node, "eth0"), lost
            assert lost["reason"].startswith(f"strict rp_filter (net.ipv4.conf.all.rp_filter = 1) in {node}: "), lost
            assert (f"; it came in there because the route to 10.244.0.0/24 (minikube's pod CIDR) in {peer} goes via "
                    "192.168.122.215 (minikube) dev eth0") in lost["reason"], lost
            assert "masquerade" not in lost["reason"] and "INVALID" not in lost["reason"], lost
            fixes.add(lost["fix"])
        assert fixes == {f"ip netns exec {node} sysctl -w net.ipv4.conf.all.rp_filter=0 && "
                         f"ip -n {peer} route replace 10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink"}, fixes
        subprocess.run(["sh", "-c", fixes.pop()], check=True, capture_output=True, timeout=20)  # as a user pastes it
        assert in_netns(node, "sysctl", "-n", "net.ipv4.conf.all.rp_filter").stdout.strip() == "0"
        assert route(peer, "10.244.0.0/24") == ("10.244.0.0", "flannel.1")
        assert pings(f"{name}-fedora-1", "10.244.1.3") and pings(f"{name}-fedora-2", "10.244.0.2")
        assert netlab("status", "--lab", name, check=False).returncode == 0  # no drift left
    finally:
        netlab("up", "-t", path)


def vni(ns: str) -> int:
    link = json.loads(subprocess.run(["ip", "-j", "-d", "-n", ns, "link", "show", "flannel.1"], capture_output=True,
                                     text=True, check=True).stdout)[0]
    return int(link["linkinfo"]["info_data"]["id"])


def test_vxlan_wrong_vni_names_the_odd_node_from_both_sides_and_its_fix_makes_the_device_again(lab):
    name, path = lab
    node = f"{name}-minikube"
    netlab("break", "vxlan-wrong-vni", "--lab", name)
    try:
        assert vni(node) == 2 and vni(f"{name}-minikube-m02") == 1
        assert not pings(f"{name}-fedora-2", "10.244.0.2")
        odd = ("flannel.1 in {} (node minikube, {}) is VNI 2, not the plan's VNI 1; "
               "a VXLAN device's VNI cannot change in place")
        repair = netlab_command(f"up -t {display_path(path)}")
        for src, dst, where, role in (("fedora-2", "fedora-1", node, "the receiver"),
                                      ("fedora-1", "fedora-2", f"{name}-minikube-m02", "the sender")):
            rc, lost = traced(name, src, dst)
            assert rc == 1 and (lost["netns"], lost["device"]) == (where, "flannel.1"), lost
            assert odd.format(node, role) in lost["reason"], lost
            # the repair, and what it changes (it said only the `up`)
            assert lost["fix"] == (f"{repair}   (it deletes flannel.1 in {node} (node minikube) and makes it again "
                                   "with VNI 1, then adds back the device's address, ARP and FDB entries and routes "
                                   "as the plan has them)"), lost
        args = shlex.split(lost["fix"].split("   (")[0])  # the command, as a user types it
        assert args[:2] == ["sudo", "netlab"]
        netlab(*args[2:])  # the printed fix, by this checkout's netlab
        assert vni(node) == 1
        assert pings(f"{name}-fedora-2", "10.244.0.2") and pings(f"{name}-fedora-1", "10.244.1.3")
        assert netlab("status", "--lab", name, check=False).returncode == 0
    finally:
        netlab("up", "-t", path)


def test_forward_policy_drop_fix_puts_back_the_policy_and_flannels_jump_so_status_is_clean(lab):
    """QA: forward-policy-drop sets FORWARD's policy DROP and deletes its jump to FLANNEL-FWD (Docker's DROP on a
    node whose Flannel rules are gone); trace's fix said only `iptables -P FORWARD ACCEPT`, after which the probe
    passed but `status` exited 1 on the missing jump. The printed fix, pasted, leaves no drift."""
    name, path = lab
    node = f"{name}-minikube"
    netlab("break", "forward-policy-drop", "--lab", name)
    try:
        assert not pings(f"{name}-fedora-1", "10.244.1.3")
        rc, lost = traced(name, "fedora-1", "fedora-2")
        assert rc == 1 and lost["netns"] == node, lost
        fix = lost["fix"].split("   (")[0]
        assert fix == (f"ip netns exec {node} iptables -P FORWARD ACCEPT && ip netns exec {node} iptables -A FORWARD "
                       '-m comment --comment "flanneld forward" -j FLANNEL-FWD'), lost
        subprocess.run(["sh", "-c", fix], check=True, capture_output=True, timeout=20)  # as a user pastes it
        assert pings(f"{name}-fedora-1", "10.244.1.3") and pings(f"{name}-fedora-2", "10.244.0.2")
        assert netlab("status", "--lab", name, check=False).returncode == 0  # was 1: missing rule ... FLANNEL-FWD
    finally:
        netlab("up", "-t", path)
