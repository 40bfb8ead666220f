"""Chains the lab owns by name and no longer plans, on a real lab (iptables mode, then nftables): a
kube-proxy chain made by hand, the NetworkPolicy chains of a node whose pods no policy selects any more, and
kube-proxy's whole iptables-mode ruleset after a switch to nftables mode. `status` (and `status -t FILE`)
names them, `up` deletes them, and a chain of the user's own, under another name, stays.

One small lab is shared by the cases a worker runs (each leaves it clean), but no case counts on another: with
--dist worksteal (pyproject.toml) a worker may take later cases of this module to a lab of its own, so each case
makes the chains of the user's it checks itself. The fake kernel's unit tests: tests/unit/test_owned_chains.py.
"""

from __future__ import annotations

import json

import pytest

from helpers import in_netns, lab_up, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

FAKE = "KUBE-SVC-FAKEFAKEFAKEFAKE"
LEFTOVER = "KUBE-EXT-LEFTOVERLEFTOVER"


def topology(name: str, role: str = "guarded", mode: str = "iptables") -> str:
    return f"""name: {name}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: n1, podCIDR: 10.244.0.0/24}}
  - {{name: n2, podCIDR: 10.244.1.0/24}}
pods:
  - {{name: web, node: n1, labels: {{app: web, role: {role}}}}}
  - {{name: cli, node: n2}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
networkPolicies:
  - name: guard
    spec:
      podSelector: {{matchLabels: {{role: guarded}}}}
      ingress: [{{from: [{{podSelector: {{}}}}]}}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("sc")
    path = write_topology(tmp_path_factory.mktemp("stale"), topology(name))
    with lab_up(path, name):
        yield name, path


def chains(netns: str, table: str) -> list[str]:
    save = in_netns(netns, "iptables-save", "-t", table, check=True).stdout
    return [line[1:].split()[0] for line in save.splitlines() if line.startswith(":")]


def status_json(*args: str) -> tuple[int, list[dict]]:
    proc = netlab("status", *args, "-o", "json", check=False)
    return proc.returncode, json.loads(proc.stdout)["details"]


def test_a_kube_proxy_chain_made_by_hand_is_drift_and_up_deletes_it(lab):
    name, path = lab
    node = f"{name}-n1"
    in_netns(node, "iptables", "-t", "nat", "-N", FAKE, check=True)
    in_netns(node, "iptables", "-t", "nat", "-A", FAKE, "-j", "DNAT", "--to-destination", "1.2.3.4", check=True)
    in_netns(node, "iptables", "-t", "nat", "-N", "KUBE-SEP-ZZZZ", check=True)
    in_netns(node, "iptables", "-t", "nat", "-N", "MY-OWN", check=True)  # the user's: not kube-proxy's name
    code, details = status_json("--lab", name)
    assert code == 1
    [nat] = [d for d in details if d["object"] == f"iptables nat rules in {node}"]
    assert (nat["resource"]["kind"], nat["resource"]["table"]) == ("iptables", "nat")
    assert nat["differences"] == ["extra chain: KUBE-SEP-ZZZZ", f"extra chain: {FAKE}",
                                  f"extra rule: -A {FAKE} -j DNAT --to-destination 1.2.3.4"]
    fixed = json.loads(netlab("up", "-t", path, "-o", "json").stdout)["fixed"]
    assert f"{node}: deleted stale nat chains KUBE-SEP-ZZZZ, {FAKE}" in fixed
    left = chains(node, "nat")
    assert FAKE not in left and "KUBE-SEP-ZZZZ" not in left and "MY-OWN" in left
    assert netlab("status", "--lab", name, check=False).returncode == 0


def test_status_t_names_the_policy_chains_up_t_deletes(lab, tmp_path):
    """No policy selects a pod of n1 in the new file: status -t named only the jumps into the node's NETPOL
    chains, and up -t then deleted five chains more."""
    name, path = lab
    node = f"{name}-n1"
    in_netns(node, "iptables", "-N", "MY-FILTER", check=True)
    mine = sorted(c for c in chains(node, "filter") if c.startswith("NETPOL-"))
    assert len(mine) >= 3, mine
    opened = write_topology(tmp_path, topology(name, role="open"), name="opened.yaml")
    code, details = status_json("-t", opened)
    assert code == 1
    [filt] = [d for d in details if d["object"] == f"iptables filter rules in {node}"]
    assert [line for line in filt["differences"] if line.startswith("extra chain: ")] == [
        f"extra chain: {c}" for c in mine]
    netlab("up", "--reconfigure", "-t", opened)
    left = chains(node, "filter")
    assert not [c for c in left if c.startswith("NETPOL-")] and "MY-FILTER" in left
    assert netlab("status", "-t", opened, check=False).returncode == 0
    netlab("up", "--reconfigure", "-t", path)  # the next case starts from the lab's own file


def test_switching_to_nftables_mode_takes_every_iptables_mode_chain_away(lab, tmp_path):
    """A leftover Service chain survived the switch: the Services feature deleted only the chains it had
    recorded, and status in nftables mode did not see it."""
    name, path = lab
    node = f"{name}-n1"
    in_netns(node, "iptables", "-t", "nat", "-N", LEFTOVER, check=True)
    # The user's chains, of this case's own (MY-OWN and MY-FILTER are made by the cases above, which another
    # worker may have run on its lab), with a rule each: the switch neither deletes nor flushes them.
    for table, chain in (("nat", "MY-NAT-KEPT"), ("filter", "MY-FILTER-KEPT")):
        in_netns(node, "iptables", "-t", table, "-N", chain, check=True)
        in_netns(node, "iptables", "-t", table, "-A", chain, "-s", "192.0.2.7", "-j", "RETURN", check=True)
    nft = write_topology(tmp_path, topology(name, mode="nftables"), name="nft.yaml")
    code, details = status_json("-t", nft)
    assert code == 1
    [nat] = [d for d in details if d["object"] == f"iptables nat rules in {node}"]
    assert f"extra chain: {LEFTOVER}" in nat["differences"] and "extra chain: KUBE-SERVICES" in nat["differences"]
    before = {table: [c for c in chains(node, table) if c.startswith("KUBE-")] for table in ("nat", "filter")}
    fixed = json.loads(netlab("up", "--reconfigure", "-t", nft, "-o", "json").stdout)["fixed"]
    for table in ("nat", "filter"):
        kube = [c for c in chains(node, table) if c.startswith("KUBE-")]
        assert kube == [], (table, kube)
        # One line per node and table, every chain in it once: the plan's restore and the Services feature
        # each said theirs (a second filter line of KUBE-FIREWALL, KUBE-PROXY-FIREWALL; of nat, KUBE-MARK-MASQ).
        for netns in (node, f"{name}-n2"):
            said = [line for line in fixed if line.startswith(f"{netns}: deleted stale {table} chains ")]
            assert len(said) == 1, (netns, table, fixed)
            listed = said[0].split(" chains ", 1)[1].split(", ")
            assert len(listed) == len(set(listed)), said
        [said] = [line for line in fixed if line.startswith(f"{node}: deleted stale {table} chains ")]
        assert sorted(said.split(" chains ", 1)[1].split(", ")) == sorted(before[table]), (said, before[table])
    for table, chain in (("nat", "MY-NAT-KEPT"), ("filter", "MY-FILTER-KEPT")):
        save = in_netns(node, "iptables-save", "-t", table, check=True).stdout
        assert f"-A {chain} -s 192.0.2.7/32 -j RETURN" in save.splitlines(), (table, save)
    assert netlab("status", "-t", nft, check=False).returncode == 0
