"""QA q48: netlab's impairments named only on the paths packets really take, with real traffic in a one-node lab.

1. probe named `n1:eth0 --loss 100%` "on the path of a flow that failed" for n1 -> other, a pod of n1: a node
   reaches its own pods by cni0 (`ip route get`: dev cni0), and n1 -> web got through in spite of the loss.
2. trace `other -> web` that a REJECT in the node's FORWARD chain answered said "the path crosses ... web:eth0
   (rate 10mbit, hop r1)": r1 is the reset n1 sent, which never crossed web's eth0."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers import in_netns, ip_json, lab_up, netlab, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

MARK = "netlab-test-q48"  # the comment of the rules this test adds (and removes)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("ih")
    path = write_topology(tmp_path_factory.mktemp("offpath"), f"""\
name: {name}
nodes:
  - name: n1
pods:
  - {{name: web, node: n1}}
  - {{name: other, node: n1}}
""")
    with lab_up(path, name):
        yield name


def _rule(netns: str, chain: str, rule: str, add: bool) -> None:
    """Insert (or delete) one filter rule of ours in ``netns``, through iptables-restore --noflush."""
    verb = f"-I {chain} 1" if add else f"-D {chain}"
    proc = subprocess.run(["ip", "netns", "exec", netns, "iptables-restore", "--noflush"], capture_output=True,
                          text=True, input=f"*filter\n{verb} {rule} -m comment --comment {MARK}\nCOMMIT\n", timeout=20)
    assert proc.returncode == 0, proc.stderr
    saved = in_netns(netns, "iptables-save", "-t", "filter", check=True).stdout
    assert (MARK in saved) == add, saved


def _ip(netns: str, dev: str) -> str:
    (link,) = ip_json("addr", "show", "dev", dev, netns=netns)
    return next(a["local"] for a in link["addr_info"] if a["family"] == "inet")


def test_a_nodes_flow_to_its_own_pod_is_not_blamed_on_its_eth0(lab):
    n1, other = f"{lab}-n1", f"{lab}-other"
    gateway, other_ip = _ip(n1, "cni0"), _ip(other, "eth0")
    assert ip_json("route", "get", other_ip, netns=n1)[0]["dev"] == "cni0"  # n1 reaches its pod by cni0
    netlab("impair", "--lab", lab, "n1:eth0", "--loss", "100%")
    netlab("impair", "--lab", lab, "n1:cni0", "--rate", "100mbit")
    rule = f"INPUT -s {gateway} -p tcp -j DROP"  # n1 -> other's TCP fails, for a cause of its own
    _rule(other, *rule.split(" ", 1), add=True)
    try:
        proc = netlab("probe", "--lab", lab, "-o", "json", check=False)
        assert proc.returncode == 1, proc
        out = json.loads(proc.stdout)
        failed = [f"{r['source']} -> {r['destination']}" for r in out["probes"] if not r["as_expected"]]
        assert failed == ["n1 -> other"], failed
        assert any(r["source"] == "n1" and r["destination"] == "web" and r["as_expected"] for r in out["probes"])
        assert not [h for h in out["hints"] if h.startswith("n1:eth0 ")], out["hints"]
        said = [h for h in out["hints"] if h.startswith("n1:cni0 ")]  # what the flow does cross is still named
        assert len(said) == 1 and "on the path of a flow that failed: n1 -> other tcp/8080;" in said[0], out["hints"]
        text = netlab("probe", "--lab", lab, check=False).stdout
        assert "n1:cni0 has netlab's impairment rate 100mbit" in text and "n1:eth0 has" not in text, text
    finally:
        _rule(other, *rule.split(" ", 1), add=False)
        netlab("impair", "--lab", lab, "n1:eth0", "--clear")
        netlab("impair", "--lab", lab, "n1:cni0", "--clear")


def test_a_trace_the_node_rejected_names_no_impairment_the_reset_never_crossed(lab):
    n1 = f"{lab}-n1"
    web_ip, other_ip = _ip(f"{lab}-web", "eth0"), _ip(f"{lab}-other", "eth0")
    netlab("impair", "--lab", lab, "web:eth0", "--rate", "10mbit")
    rule = f"FORWARD -s {other_ip} -d {web_ip} -p tcp --dport 8080 -j REJECT --reject-with tcp-reset"
    try:
        _rule(n1, *rule.split(" ", 1), add=True)
        try:
            rc, out = traced(lab, "other", "web", "--port", "8080")
            assert rc == 1, out
            assert out["impairments"] == [], (out["impairments"], out["reply"])
            text = netlab("trace", "--lab", lab, "other", "web", "--port", "8080", check=False).stdout
            assert "web:eth0" not in text, text
        finally:
            _rule(n1, *rule.split(" ", 1), add=False)
        rc, out = traced(lab, "other", "web", "--port", "8080")  # now web answers, out of its eth0
        assert rc == 0 and [(i["target"], i["direction"]) for i in out["impairments"]] == [("web:eth0", "reply")], \
            out["impairments"]
    finally:
        netlab("impair", "--lab", lab, "web:eth0", "--clear")
