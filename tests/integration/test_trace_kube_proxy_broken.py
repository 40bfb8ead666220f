"""trace on a real lab (root) whose kube-proxy rules were broken by hand, in both modes: a DNAT rule edited to a wrong
port, and the ruleset gone at its root (nftables: the whole table ip kube-proxy; iptables: KUBE-SERVICES and the
jumps to it).

One small lab per mode (two nodes; web on node-2, the only endpoint of Service web; client on node-1, whose node
DNATs), unique name, always taken down; `netlab up` repairs it after each case. The trace blamed the edited rule
on a "stale conntrack entry" (its fix, conntrack -D, changed nothing), and the missing table on the gateway the
packet wandered to, with no fix.
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from helpers import as_planned, in_netns, lab_up, netlab, traced, unique_lab, write_topology
from netlab.errors import command_path, netlab_command

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: node-1}}
  - {{name: node-2}}
pods:
  - {{name: web, node: node-2, labels: {{app: web}}}}
  - {{name: client, node: node-1}}
services:
  - name: web
    selector: {{app: web}}
    clusterIP: 10.96.0.20
    ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def broken_lab(request, tmp_path_factory):
    lab, mode = unique_lab("hkb"), request.param
    path = write_topology(tmp_path_factory.mktemp(f"broken-{mode}"), TOPOLOGY.format(lab=lab, mode=mode),
                          f"{lab}.yaml")
    with lab_up(path, lab):
        yield {"name": lab, "mode": mode, "n1": f"{lab}-node-1", "path": path}


def trace(lab: str) -> tuple[int, dict]:
    """client's connection to Service web, traced."""
    return traced(lab, "client", "svc/web", "--proto", "tcp", "--port", "80")


def web_ip(n1: str) -> str:
    save = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
    return save.split('"default/web" -m tcp -j DNAT --to-destination ', 1)[1].split(":")[0] if "DNAT" in save \
        else in_netns(n1, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout \
        .split("meta l4proto tcp dnat to ", 1)[1].split(":")[0]


def test_a_dnat_rule_edited_by_hand_is_named_and_its_fix_puts_the_chain_back(broken_lab):
    lab, mode, n1 = broken_lab["name"], broken_lab["mode"], broken_lab["n1"]
    ip = web_ip(n1)
    if mode == "nftables":
        listed = in_netns(n1, "nft", "-a", "list", "table", "ip", "kube-proxy", check=True).stdout
        chain = next(line.split()[1] for line in listed.splitlines() if line.strip().startswith("chain endpoint-"))
        handle = next(line.rsplit("# handle ", 1)[1] for line in listed.splitlines()
                      if f"dnat to {ip}:8080" in line)
        in_netns(n1, "nft", "replace", "rule", "ip", "kube-proxy", chain, "handle", handle,
                 f"meta l4proto tcp dnat to {ip}:8081", check=True)
        wrong = f"meta l4proto tcp dnat to {ip}:8081"
    else:
        save = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
        chain = next(line.split()[1] for line in save.splitlines() if f"--to-destination {ip}:8080" in line)
        in_netns(n1, "iptables", "-t", "nat", "-R", chain, "2", "-p", "tcp", "-m", "comment", "--comment",
                 "default/web", "-m", "tcp", "-j", "DNAT", "--to-destination", f"{ip}:8081", check=True)
        wrong = f'-A {chain} -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination {ip}:8081'
    in_netns(n1, "conntrack", "-F")
    fixed = False
    try:
        rc, d = trace(lab)
        lost = d["lost"]
        assert rc == 1 and lost["netns"] == n1, d
        assert "stale" not in lost["reason"] and "conntrack -D" not in lost["fix"], lost
        assert f"DNATs this new connection to {ip}:8081, which is no endpoint of Service default/web" in lost["reason"]
        planned = f"dnat to {ip}:8080`" if mode == "nftables" else f"--to-destination {ip}:8080`"
        assert f"the rule `{wrong}`" in lost["reason"] and "where kube-proxy writes `" in lost["reason"]
        assert planned in lost["reason"]
        if mode == "iptables":  # the rule's counter took the packet: the rules DNATed it, not an older entry
            assert "(its counter went up by 1 during the trace)" in lost["reason"]
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["facts"]["wrong_rule"] == wrong and row["facts"]["wrong_chain"] == chain
        subprocess.run(["bash", "-c", lost["fix"]], check=True)  # the printed fix puts the chain back
        fixed = as_planned(lab)
        assert fixed
    finally:
        if not fixed:
            netlab("up", "--lab", lab)
    rc, d = trace(lab)
    assert rc == 0 and d["delivered"] and d["reply_received"]


def test_a_node_without_kube_proxys_ruleset_is_blamed_and_up_is_the_fix(broken_lab):
    lab, mode, n1 = broken_lab["name"], broken_lab["mode"], broken_lab["n1"]
    if mode == "nftables":
        in_netns(n1, "nft", "delete", "table", "ip", "kube-proxy", check=True)
    else:  # the jumps first: iptables deletes no chain something jumps to
        for hook in ("PREROUTING", "OUTPUT"):
            in_netns(n1, "iptables", "-t", "nat", "-D", hook, "-m", "comment", "--comment",
                     "kubernetes service portals", "-j", "KUBE-SERVICES", check=True)
        in_netns(n1, "iptables", "-t", "nat", "-F", "KUBE-SERVICES", check=True)
        in_netns(n1, "iptables", "-t", "nat", "-X", "KUBE-SERVICES", check=True)
    try:
        rc, d = trace(lab)
        lost = d["lost"]
        # the fix is the repair status prints for this lab, from a file: `sudo netlab up -t FILE` (it said --lab)
        repair = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)["repair"]
        assert repair == netlab_command(f"up -t {command_path(broken_lab['path'])}"), repair
        assert rc == 1 and lost["netns"] == n1 and lost["fix"] == repair, d
        row = next(h for h in d["hops"] if h["index"] == lost["hop"])
        assert row["kind"] == "dnat" and row["cause"]
        if mode == "nftables":
            assert row["facts"]["missing_table"] == "ip kube-proxy"
            assert "table ip kube-proxy (kube-proxy's whole ruleset" in lost["reason"]
            assert not [c for h in d["hops"] for c in h["commands"] if "list chain ip kube-proxy" in c]
        else:
            assert row["facts"]["missing_targets"] == ["KUBE-SERVICES"]
            assert "and chain KUBE-SERVICES, which it jumps to, is missing too" in lost["reason"]
        sudo, command, *args = shlex.split(lost["fix"])  # the printed fix, as typed
        assert (sudo, command) == ("sudo", "netlab"), lost
        netlab(*args)
        assert as_planned(lab)
    finally:
        if not as_planned(lab):
            netlab("up", "--lab", lab)
    rc, d = trace(lab)
    assert rc == 0 and d["delivered"]
