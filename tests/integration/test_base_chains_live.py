"""A lab whose cluster.kubeProxyMode is switched by `up` holds the netfilter hooks a fresh lab of the same file
holds (root; `nft -j list ruleset` of every namespace, edited lab against a fresh one, and traffic through a
Service after each switch).

iptables-nft makes a built-in chain when a rule names it and never deletes one, and iptables-save prints every
built-in chain whether it exists or not: a switch from iptables to nftables left filter INPUT and OUTPUT, nat
PREROUTING and OUTPUT hooked (empty, policy accept) where a fresh nftables lab has none, and status said all as
planned. The unit tests (tests/unit/test_base_chains.py) check the same on the fake kernel."""

from __future__ import annotations

import json
import re
import sys

import pytest

from helpers import in_netns, lab_namespaces, netlab

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: n1, ip: 192.168.122.2}}
  - {{name: n2, ip: 192.168.122.3}}
pods:
  - {{name: web, node: n2, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
CLIENT = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
          "s.sendall(b'hi\\n');print(s.recv(4096).decode().strip())")


def hooks(lab: str) -> dict[str, dict]:
    """Every namespace of the lab (by its name in the lab): its nf_tables tables, each chain's hook, type,
    priority and policy, and how many rules it holds, as `nft -j list ruleset` gives them."""
    out = {}
    for ns in sorted(lab_namespaces(lab)):
        data = json.loads(in_netns(ns, "nft", "-j", "list", "ruleset", check=True).stdout)["nftables"]
        tables = sorted(f"{o['table']['family']} {o['table']['name']}" for o in data if "table" in o)
        chains = {f"{c['family']} {c['table']} {c['name']}": [c.get(k) for k in ("type", "hook", "prio", "policy")]
                  for o in data if "chain" in o for c in [o["chain"]]}
        for o in data:
            if "rule" in o:
                r = o["rule"]
                chains[f"{r['family']} {r['table']} {r['chain']}"].append("rule")
        out[ns.removeprefix(lab + "-")] = {"tables": tables, "chains": chains}
    return out


def served(lab: str) -> str:
    """The pod that answered the client through the Service's ClusterIP."""
    proc = in_netns(f"{lab}-client", sys.executable, "-c", CLIENT, "10.96.0.20", "80", check=True)
    return json.loads(proc.stdout)["pod"]


def test_a_switched_kube_proxy_mode_holds_the_hooks_of_a_fresh_lab(labs):
    edited, fresh = labs.name("qv"), labs.name("qv")
    path, _ = labs.up(TOPOLOGY.format(lab=edited, mode="iptables"), f"{edited}.yaml")
    before = hooks(edited)  # a fresh iptables lab
    assert "ip filter INPUT" in before["n1"]["chains"]  # kube-proxy's jumps hook it

    labs.up(TOPOLOGY.format(lab=edited, mode="nftables"), f"{edited}.yaml")
    labs.up(TOPOLOGY.format(lab=fresh, mode="nftables"), f"{fresh}.yaml")
    after = hooks(edited)
    assert after == hooks(fresh), json.dumps(after, indent=1)
    assert not [c for c in after["n1"]["chains"] if re.match(r"ip (filter (INPUT|OUTPUT)|nat (PREROUTING|OUTPUT))$",
                                                             c)]
    assert netlab("status", "--lab", edited, check=False).returncode == 0
    assert "nothing to change" in netlab("up", "-t", path).stdout  # the next up finds nothing left
    assert served(edited) == "web"
    netlab("down", "--lab", fresh)

    # back, by another file of the same name: up --reconfigure; nothing of table ip kube-proxy is left
    other, _ = labs.up(TOPOLOGY.format(lab=edited, mode="iptables"), "other.yaml", "--reconfigure")
    assert hooks(edited) == before
    assert netlab("status", "--lab", edited, check=False).returncode == 0
    assert served(edited) == "web"
