"""spec.loadBalancerSourceRanges in both kube-proxy modes, with real connections and the kernel's own view (root).

A LoadBalancer Service allowing 203.0.113.0/26 and the pod 10.244.0.9: the internet's gateway routes the
LoadBalancer IP to the nodes untranslated (a passthrough balancer), so the node's kube-proxy sees the host's own
address: 203.0.113.50 (inside) is answered and 203.0.113.160 (outside) is dropped at the node it was routed to
(KUBE-PROXY-FIREWALL's DROP, counted in ``iptables-save -c``; nftables mode: the ``ip saddr != ... drop`` rule),
and the gateway filters nothing. A pod to the LoadBalancer IP never leaves its node (kube-proxy's short-cut): the pod inside passes kube-proxy's KUBE-FW-<hash> (iptables mode) or
``firewall-<hash>`` chain (nftables mode), the pod outside is dropped (KUBE-PROXY-FIREWALL's DROP, counted; the
``ip saddr != { ... } drop`` rule). ``status`` is clean after up, names the rule or element deleted by hand, and
``up`` puts it back. One lab per mode, always taken down.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from breaking import assert_as_planned
from helpers import in_netns, lab_up, netlab, probe_failures, unique_lab, write_topology

pytestmark = pytest.mark.root

LB_IP = "203.0.113.100"

TOPO = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: inside, ip: 203.0.113.50}}, {{name: outside, ip: 203.0.113.160}}]
pods:
  - {{name: web, node: n2, labels: {{app: web}}}}
  - {{name: near, node: n1, ip: 10.244.0.9}}
  - {{name: far, node: n1, ip: 10.244.0.10}}
services:
  - name: web
    type: LoadBalancer
    selector: {{app: web}}
    loadBalancerIP: {lb}
    loadBalancerSourceRanges: [203.0.113.0/26, 10.244.0.9/32]
    ports: [{{port: 80, targetPort: 8080}}]
"""


def fetch(netns: str, timeout: float = 3) -> subprocess.CompletedProcess:
    return in_netns(netns, "curl", "-s", "-m", str(timeout), f"http://{LB_IP}:80/", timeout=timeout + 5)


def answered(netns: str) -> dict:
    got = fetch(netns)
    assert got.returncode == 0, (netns, got.returncode, got.stderr)
    return json.loads(got.stdout.strip().splitlines()[-1])


def dropped(netns: str) -> bool:
    return fetch(netns, timeout=2).returncode == 28  # curl's timeout: dropped, not refused (7)


def counted(ns: str, table: str, needle: str) -> tuple[int, str]:
    saved = in_netns(ns, "iptables-save", "-c", "-t", table, check=True).stdout
    line = next(line for line in saved.splitlines() if needle in line)
    return int(re.match(r"\[(\d+):", line).group(1)), line


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_source_ranges_let_the_inside_through_and_drop_the_outside(tmp_path, mode):
    name = unique_lab("ex")
    path = write_topology(tmp_path, TOPO.format(name=name, mode=mode, lb=LB_IP))
    with lab_up(path, name, in_process=True):
        n1, n2, gw = f"{name}-n1", f"{name}-n2", f"{name}-gateway"
        assert_as_planned(name)
        # From the internet, routed by the gateway to a node untranslated: the node's kube-proxy checks the ranges.
        assert answered(f"{name}-inside")["pod"] == "web"
        assert dropped(f"{name}-outside")
        assert "DROP" not in in_netns(gw, "iptables-save", "-t", "filter", check=True).stdout  # nothing at the gateway
        if mode == "iptables":
            drops = sum(counted(ns, "filter", "-A KUBE-PROXY-FIREWALL")[0] for ns in (n1, n2))
            passed = sum(counted(ns, "nat", '-s 203.0.113.0/26 -m comment --comment "default/web loadbalancer IP"')[0]
                         for ns in (n1, n2))
            assert drops >= 1 and passed >= 1, (drops, passed)
        # From pods, through kube-proxy's firewall on their node.
        assert answered(f"{name}-near")["pod"] == "web"
        assert dropped(f"{name}-far")
        # trace names both drops, at the node the gateway routed the host's packet to and at the pod's node.
        said = "dropped by kube-proxy's firewall for Service default/web's loadBalancerSourceRanges"
        for src, dst, where in (("outside", "svc/web", (n1, n2)), ("far", LB_IP, (n1,))):
            tr = netlab("trace", "--lab", name, src, dst, "--proto", "tcp", "--port", "80", check=False)
            lost = next(line for line in tr.stdout.splitlines() if line.startswith("result:"))
            assert tr.returncode == 1 and "LOST at hop" in lost and said in lost, tr.stdout
            assert any(f"({ns} " in lost for ns in where), lost
            # the drop the topology asks for, as a NetworkPolicy's deny (exit 1 all the same): nothing to repair
            assert "the drop the topology asks for, not a fault" in lost, lost
            assert "repairs the lab" not in tr.stdout and "\n  fix:" not in tr.stdout, tr.stdout
        tr = netlab("trace", "--lab", name, "inside", "svc/web", "--proto", "tcp", "--port", "80", check=False)
        assert tr.returncode == 0, tr.stdout
        if mode == "iptables":
            packets, rule = counted(n1, "filter", "-A KUBE-PROXY-FIREWALL")
            assert packets >= 1 and f"-d {LB_IP}/32" in rule and rule.endswith("-j DROP"), rule
            assert counted(n1, "nat", '-s 10.244.0.9/32 -m comment --comment "default/web loadbalancer IP" '
                                      "-j KUBE-EXT-")[0] >= 1
            spec = rule.split(" ", 1)[1].replace("-A KUBE-PROXY-FIREWALL ", "", 1)
            subprocess.run(["ip", "netns", "exec", n1, "sh", "-c", f"iptables -D KUBE-PROXY-FIREWALL {spec}"],
                           check=True)
            gone = "KUBE-PROXY-FIREWALL"
        else:
            table = json.loads(in_netns(n1, "nft", "-j", "list", "table", "ip", "kube-proxy", check=True).stdout)
            fw = [o["rule"] for o in table["nftables"]
                  if o.get("rule", {}).get("chain", "").startswith("firewall-PFISGYVC-")]
            assert len(fw) == 1 and fw[0]["expr"][-1] == {"drop": None}, fw
            fmap = next(o["map"] for o in table["nftables"] if o.get("map", {}).get("name") == "firewall-ips")
            assert [e[0]["concat"][0] for e in fmap["elem"]] == [LB_IP], fmap
            in_netns(n1, "nft", "delete", "element", "ip", "kube-proxy", "firewall-ips",
                     f"{{ {LB_IP} . tcp . 80 }}", check=True)
            gone = "firewall-ips"
        # Deleted by hand: status names it; up puts it back. In nftables mode the pod outside the ranges then gets
        # through (the firewall-ips check is a chain of its own, before the DNAT); in iptables mode KUBE-FW lets it
        # fall through undone, out to the gateway, which routes the LoadBalancer IP back to a node (n2 drops it).
        if mode == "nftables":
            assert answered(f"{name}-far")["pod"] == "web"
        else:
            assert dropped(f"{name}-far")
        st = netlab("status", "--lab", name, check=False)
        assert st.returncode == 1 and gone in st.stdout and LB_IP in st.stdout, (st.stdout, st.stderr)
        netlab("up", "-t", path)
        assert_as_planned(name)
        assert dropped(f"{name}-far")


ONE = """\
name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
internet:
  hosts: [{{name: inside, ip: 203.0.113.10}}, {{name: outside, ip: 203.0.113.11}}]
pods:
{pods}services:
  - name: web
    type: LoadBalancer
    selector: {{app: web}}
    loadBalancerIP: {lb}
    loadBalancerSourceRanges: [203.0.113.10/32]
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_a_single_32_range_is_as_planned_changes_with_up_and_probes_as_expected(tmp_path, mode):
    """One client address, the commonest loadBalancerSourceRanges (QA q4 #1 and #3). nftables mode: kube-proxy's
    ``ip saddr != { 203.0.113.10/32 } drop`` is listed back by nft as ``!= 203.0.113.10``; status compared the /32,
    so a fresh lab was drift and every later up was rolled back (exit 4). Both modes: probe expected the host
    outside the range answered by the balancer, which drops it as asked (exit 1)."""
    name = unique_lab("lb")
    one = "  - {name: web, node: n2, labels: {app: web}}\n"
    two = one + "  - {name: web2, node: n1, labels: {app: web}}\n"
    path = write_topology(tmp_path, ONE.format(name=name, mode=mode, lb=LB_IP, pods=one))
    with lab_up(path, name, in_process=True):
        n1 = f"{name}-n1"
        assert_as_planned(name)  # a fresh nftables lab was drift (the /32)
        if mode == "nftables":  # the kernel's own view: a plain comparison with the bare address
            table = json.loads(in_netns(n1, "nft", "-j", "list", "table", "ip", "kube-proxy", check=True).stdout)
            (fw,) = [o["rule"] for o in table["nftables"]
                     if o.get("rule", {}).get("chain", "").startswith("firewall-PFISGYVC-")]
            assert fw["expr"][0]["match"]["op"] == "!=" and fw["expr"][0]["match"]["right"] == "203.0.113.10", fw
        else:
            assert counted(n1, "nat", "-s 203.0.113.10/32 ")[1].startswith("[")
        assert answered(f"{name}-inside")["pod"] == "web"
        assert dropped(f"{name}-outside")
        # An up that changes something (a second endpoint) converges, and status stays clean.
        write_topology(tmp_path, ONE.format(name=name, mode=mode, lb=LB_IP, pods=two))
        up = netlab("up", "-t", path, check=False)
        assert up.returncode == 0, (up.stdout, up.stderr)
        assert_as_planned(name)
        if mode == "nftables":
            listed = in_netns(n1, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
            assert "numgen random mod 2 vmap" in listed and "ip saddr != 203.0.113.10 drop" in listed, listed
        else:
            nat = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
            assert len(re.findall(r"-A KUBE-SEP-\S+ .*default/web.* -j DNAT", nat)) == 2, nat
        # probe: the host inside reaches the balancer, the one outside is expected dropped, and is.
        pr = netlab("probe", "--lab", name, "-o", "json", check=False)
        report = json.loads(pr.stdout)
        assert pr.returncode == 0, probe_failures(report)
        lb = {r["source"]: r for r in report["probes"] if (r.get("service") or {}).get("via") == "LoadBalancer"}
        assert set(lb) == {"inside", "outside"}, lb
        assert (lb["inside"]["expected"], lb["inside"]["observed"]) == ("reachable", "reachable"), lb["inside"]
        out = lb["outside"]
        assert (out["expected"], out["observed"], out["outcome"]) == ("unreachable", "unreachable", "timeout"), out
        assert out["reason"].startswith("203.0.113.11 is outside Service web's loadBalancerSourceRanges "
                                        "(203.0.113.10/32)"), out
        assert "loadBalancerSourceRanges 203.0.113.10/32: other sources dropped" in out["section"], out


def test_the_range_of_every_address_is_as_planned(tmp_path):
    """``loadBalancerSourceRanges: [0.0.0.0/0]``: kube-proxy's ``-s 0.0.0.0/0`` is printed by iptables-save without
    the match (the kernel keeps no address match for it); status compared it as written and said a fresh lab's
    rules missing (iptables mode: KUBE-FW-<hash> in the nodes). Both hosts are answered."""
    name = unique_lab("la")
    topo = ONE.format(name=name, mode="iptables", lb=LB_IP, pods="  - {name: web, node: n2, labels: {app: web}}\n")
    path = write_topology(tmp_path, topo.replace("[203.0.113.10/32]", "[0.0.0.0/0]"))
    with lab_up(path, name, in_process=True):
        assert_as_planned(name)
        assert answered(f"{name}-inside")["pod"] == "web" and answered(f"{name}-outside")["pod"] == "web"
