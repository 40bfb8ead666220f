"""trace and kube-proxy's rules on a real lab (root), in both modes: where the DNAT is, what a flushed chain lacks.

One small lab per mode (two nodes; web on node-2, the only endpoint of Service web, so the DNAT's choice is
always the same; client on node-1; Service pair, web and web-b on node-1), unique name, always taken down. The NAT rows list the commands that show
the rules that made the translation, and those commands run; a flushed endpoint chain is blamed on its DNAT
rule (not the masquerade mark before it), and the printed fix makes the lab as planned again.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

from helpers import as_planned, in_netns, lab_up, netlab, traced, unique_lab, write_topology
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.trace.labmap import LabMap

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: node-1}}
  - {{name: node-2}}
pods:
  - {{name: web, node: node-2, labels: {{app: web, tier: pair}}}}
  - {{name: web-b, node: node-1, labels: {{tier: pair}}}}
  - {{name: client, node: node-1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{port: 80, targetPort: 8080}}]
  - name: pair
    selector: {{tier: pair}}
    clusterIP: 10.96.0.21
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def gap_lab(request, tmp_path_factory):
    lab, mode = unique_lab("hce"), request.param
    path = write_topology(tmp_path_factory.mktemp(f"gaps-{mode}"), TOPOLOGY.format(lab=lab, mode=mode),
                          f"{lab}.yaml")
    m = LabMap.from_lab(resolve(load_topology(path)), build_plan(resolve(load_topology(path))))
    web = m.service_for("10.96.0.20", 80, "tcp")
    with lab_up(path, lab):
        yield {"name": lab, "path": path, "mode": mode, "svc": web, "ep": web.endpoints[0],
               "pair": m.service_for("10.96.0.21", 80, "tcp")}


def trace(lab: str, to: str = "svc/web") -> tuple[int, dict]:
    """client's connection to port 80 of ``to``, traced."""
    return traced(lab, "client", to, "--proto", "tcp", "--port", "80")


def test_the_nat_rows_show_the_rules_of_the_mode_the_lab_is_in(gap_lab):
    lab, mode, svc, ep = gap_lab["name"], gap_lab["mode"], gap_lab["svc"], gap_lab["ep"]
    n1 = f"{lab}-node-1"
    rc, d = trace(lab)
    assert rc == 0 and d["delivered"] and d["reply_received"], d.get("lost")
    dnat = next(h for h in d["hops"] if h["kind"] == "dnat")
    undnat = next(h for h in d["reply_hops"] if h["kind"] == "snat" and "un-DNAT" in h["decision"])
    assert dnat["netns"] == undnat["netns"] == n1
    for row in (dnat, undnat):
        if mode == "nftables":
            assert row["commands"][1:] == [f"ip netns exec {n1} nft list chain ip kube-proxy {svc.svc_chain}",
                                           f"ip netns exec {n1} nft list chain ip kube-proxy {ep.sep_chain}"]
        else:
            assert row["commands"][1:] == [f"ip netns exec {n1} iptables-save -c -t nat"]
    # What the row says to run shows what made the translation: the DNAT to web, and (iptables) its counter.
    shown = [subprocess.run(shlex.split(c), capture_output=True, text=True, check=True).stdout
             for c in dnat["commands"][1:]]
    if mode == "nftables":
        assert f"meta l4proto tcp dnat to {ep.ip}:8080" in shown[1] and "numgen random mod 1 vmap" in shown[0]
    else:
        assert f"-j DNAT --to-destination {ep.ip}:8080" in shown[0] and "KUBE-" in shown[0]
        assert "KUBE-" not in in_netns(n1, "nft", "list", "table", "ip", "kube-proxy").stdout


def test_a_flushed_endpoint_chain_is_blamed_on_its_dnat_rule_and_the_fix_restores_it(gap_lab):
    lab, mode, ep = gap_lab["name"], gap_lab["mode"], gap_lab["ep"]
    n1 = f"{lab}-node-1"
    if mode == "nftables":
        flush = ["nft", "flush", "chain", "ip", "kube-proxy", ep.sep_chain]
        dnat, mark = f"meta l4proto tcp dnat to {ep.ip}:8080", f"ip saddr {ep.ip} jump mark-for-masquerade"
        table = "table ip kube-proxy"
    else:
        flush = ["iptables", "-t", "nat", "-F", ep.sep_chain]
        dnat = (f'-A {ep.sep_chain} -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination '
                f"{ep.ip}:8080")
        mark = f'-A {ep.sep_chain} -s {ep.ip}/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ'
        table = "nat table"
    in_netns(n1, *flush, check=True)
    fix = None
    try:
        rc, d = trace(lab)
        lost = d["lost"]
        assert rc == 1 and not d["delivered"] and lost["netns"] == n1, d
        fix = lost["fix"]
        assert f"the rule `{dnat}`" in lost["reason"] and "(the DNAT to endpoint web)" in lost["reason"]
        assert f"is missing from node-1's {table} (and so is the chain's other rule `{mark}`)" in lost["reason"]
        if mode == "nftables":  # the node itself refuses it (ICMP port unreachable): it goes nowhere else
            assert "cluster-ips-check rejects it" in lost["reason"] and "it went on" not in lost["reason"]
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["facts"]["missing_rule"].endswith(dnat)
        subprocess.run(["bash", "-c", fix], check=True)  # the printed fix puts the whole chain back
        assert as_planned(lab)
    finally:
        if fix is None or not as_planned(lab):
            netlab("up", "-t", gap_lab["path"])
    rc, d = trace(lab)
    assert rc == 0 and d["delivered"]


def test_every_endpoint_chain_flushed_is_named_and_the_fix_restores_them_all(gap_lab):
    """Both of pair's endpoint chains flushed on node-1: the client's packet went to one of them, nothing says
    which. The trace named the first alone, and its printed fix left the other chain empty."""
    lab, mode, pair = gap_lab["name"], gap_lab["mode"], gap_lab["pair"]
    n1 = f"{lab}-node-1"
    chains = [ep.sep_chain for ep in pair.endpoints]
    for chain in chains:
        in_netns(n1, *(["nft", "flush", "chain", "ip", "kube-proxy", chain] if mode == "nftables" else
                       ["iptables", "-t", "nat", "-F", chain]), check=True)
    fix = None
    try:
        rc, d = trace(lab, "svc/pair")
        lost = d["lost"]
        assert rc == 1 and not d["delivered"] and lost["netns"] == n1, d
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["decision"].endswith(" are missing"), row
        assert {"web", "web-b"} == set(row["decision"].split("the DNAT to endpoints ")[1]
                                       .removesuffix(" are missing").split(" and "))
        assert len(row["facts"]["other_endpoints_missing"]) == 1
        assert "the packet was sent to one of these 2 endpoints" in lost["reason"]
        fix = lost["fix"]
        assert all(chain in fix for chain in chains)
        subprocess.run(["bash", "-c", fix], check=True)  # both chains back: the lab is as planned
        assert as_planned(lab)
    finally:
        if fix is None or not as_planned(lab):
            netlab("up", "-t", gap_lab["path"])
    rc, d = trace(lab, "svc/pair")
    assert rc == 0 and d["delivered"]
