"""trace reads kube-proxy's rules as the kernel holds them (root, both modes; QA report "qs", defects 1-5).

One small lab per mode: web's endpoints w1 (node n1) and w2 (n2), a Service without endpoints (empty), the
client c on n1. Each test breaks one thing by hand as the tester did, traces, checks the verdict and the exit
code, runs the printed fix, and traces again. The lab is put back with `up` whatever happens (the library's, in
the test's process, as its setup and teardown are).
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import as_planned_here, in_netns, lab_up, traced, unique_lab, write_topology
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.trace.labmap import LabMap

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: w1, node: n1, labels: {{app: web}}}}
  - {{name: w2, node: n2, labels: {{app: web}}}}
  - {{name: c, node: n1}}
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
  - {{name: empty, selector: {{app: none}}, clusterIP: 10.96.0.14, ports: [{{name: http, port: 80}}]}}
"""
REJECT = ["-d", "10.96.0.14/32", "-p", "tcp", "-m", "comment", "--comment", "default/empty:http has no endpoints",
          "-m", "tcp", "--dport", "80", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"]


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def live(request, tmp_path_factory):
    lab, mode = unique_lab("hlr"), request.param
    path = write_topology(tmp_path_factory.mktemp(f"live-{mode}"), TOPOLOGY.format(lab=lab, mode=mode),
                          f"{lab}.yaml")
    m = LabMap.from_lab(resolve(load_topology(path)), build_plan(resolve(load_topology(path))))
    svc = m.service_for("10.96.0.20", 80, "tcp")
    with lab_up(path, lab, in_process=True):  # in this process: no test of the module asks anything of up's or down's CLI
        yield {"name": lab, "path": path, "mode": mode, "n1": f"{lab}-n1", "svc": svc,
               "w1": svc.endpoint("10.244.0.2", 8080), "w2": svc.endpoint("10.244.1.2", 8080)}


def trace(lab: str, to: str) -> tuple[int, dict]:
    return traced(lab, "c", to, "--proto", "tcp", "--port", "80")


def run_fix(fix: str) -> None:
    subprocess.run(["bash", "-c", fix], check=True)


def test_a_deleted_reject_for_a_service_without_endpoints_is_named_and_its_fix_works(repaired):
    lab, mode, n1 = repaired["name"], repaired["mode"], repaired["n1"]
    if mode == "iptables":
        in_netns(n1, "iptables", "-t", "filter", "-D", "KUBE-SERVICES", *REJECT, check=True)
    else:
        in_netns(n1, "nft", "delete", "element", "ip", "kube-proxy", "no-endpoint-services",
                 "{ 10.96.0.14 . tcp . 80 }", check=True)
    rc, d = trace(lab, "svc/empty")
    lost = d["lost"]
    assert rc == 1 and lost["netns"] == n1 and lost["fix"], lost
    if mode == "iptables":
        assert "is missing from n1's filter table" in lost["reason"] and "has no endpoints\" -m tcp" in lost["reason"]
        assert "follows n1's routes as it is" in lost["reason"] and "it went on as it was" in lost["reason"]
        assert lost["fix"].startswith(f"ip netns exec {n1} iptables -t filter -I KUBE-SERVICES 1 -d 10.96.0.14/32")
    else:
        assert "of map no-endpoint-services" in lost["reason"] and "is missing from n1's table" in lost["reason"]
        assert "cluster-ips-check rejects it" in lost["reason"]
        assert lost["fix"].startswith(f"ip netns exec {n1} nft 'add element ip kube-proxy no-endpoint-services {{")
        assert any("port unreachable" in e["text"] for e in d["icmp_errors"]), d["icmp_errors"]
    run_fix(lost["fix"])
    assert as_planned_here(lab)
    # As planned: kube-proxy's own reject refuses it at once (a verdict, exit 1), with nothing to fix.
    rc, d = trace(lab, "svc/empty")
    assert rc == 1 and d["lost"]["reason"].startswith("Service default/empty:http has no endpoints: kube-proxy's")
    assert not d["lost"].get("fix") and any("port unreachable" in e["text"] for e in d["icmp_errors"])


def _edit_w1_dnat(live) -> None:
    """w1's endpoint chain DNATs to w2, as the tester's hand edit."""
    n1, w1 = live["n1"], live["w1"]
    if live["mode"] == "iptables":
        in_netns(n1, "iptables", "-t", "nat", "-R", w1.sep_chain, "2", "-p", "tcp", "-m", "comment", "--comment",
                 "default/web", "-m", "tcp", "-j", "DNAT", "--to-destination", "10.244.1.2:8080", check=True)
        return
    listed = in_netns(n1, "nft", "-a", "list", "chain", "ip", "kube-proxy", w1.sep_chain, check=True).stdout
    handle = next(line.split("handle ")[1] for line in listed.splitlines() if "dnat to" in line)
    in_netns(n1, "nft", "replace", "rule", "ip", "kube-proxy", w1.sep_chain, "handle", handle.strip(),
             "meta", "l4proto", "tcp", "dnat", "to", "10.244.1.2:8080", check=True)


def dnat_hop(d: dict) -> dict:
    return next(h for h in d["hops"] if h["kind"] == "dnat")


def test_an_endpoint_chain_edited_to_another_endpoint_is_named_from_the_counters_or_said_unknown(repaired):
    lab, mode, w1, w2 = repaired["name"], repaired["mode"], repaired["w1"], repaired["w2"]
    _edit_w1_dnat(repaired)
    if mode == "iptables":
        # The random choice decides which chain the packet crosses: trace until it crosses w1's (1 in 2 each),
        # and every trace names the chain whose counter moved.
        for _ in range(30):
            rc, d = trace(lab, "svc/web")
            row = dnat_hop(d)
            if rc == 0:
                assert row["facts"]["sep_chain"] == w2.sep_chain and row["facts"]["rule_counted"] == 1, row
                continue
            break
        assert rc == 1 and d["delivered"] and d["astray"], d.get("astray")
        assert row["facts"]["sep_chain"] == w1.sep_chain and row["facts"]["dnat_chain"] == w1.sep_chain
        assert f"went through {w1.sep_chain}, endpoint w1's chain (its counter went up by 1" in row["problem"]
        assert "its counter did not move" not in row["facts"]["chosen_by"]
        assert d["astray"]["fix"] == (f"ip netns exec {repaired['n1']} iptables -t nat -R {w1.sep_chain} 2 -p tcp -m "
                                      "comment --comment default/web -m tcp -j DNAT --to-destination 10.244.0.2:8080")
    else:
        # No counter in kube-proxy's table: both chains DNAT to w2, and trace says it cannot tell which took it.
        rc, d = trace(lab, "svc/web")
        row = dnat_hop(d)
        assert rc == 1 and d["delivered"] and d["astray"], d.get("astray")
        assert set(row["facts"]["dnat_chains"]) == {w1.sep_chain, w2.sep_chain}
        assert row["facts"].get("dnat_chain") is None
        assert "no counter says which" in row["problem"] and "numgen vmap chose it" not in row["decision"]
        assert "dnat to 10.244.1.2:8080` is not the plan's `meta l4proto tcp dnat to 10.244.0.2:8080`" in \
            row["problem"]
    run_fix(d["astray"]["fix"])
    assert as_planned_here(lab)
    rc, d = trace(lab, "svc/web")
    assert rc == 0 and d["delivered"] and not d["astray"], d.get("astray")


def test_nft_a_counter_the_user_inserted_is_read_and_the_share_is_the_live_maps(repaired):
    lab, n1, svc, w1, w2 = repaired["name"], repaired["n1"], repaired["svc"], repaired["w1"], repaired["w2"]
    if repaired["mode"] != "nftables":
        pytest.skip("nftables mode only")
    in_netns(n1, "nft", "insert", "rule", "ip", "kube-proxy", svc.svc_chain, "counter", check=True)
    rc, d = trace(lab, "svc/web")
    row = dnat_hop(d)
    assert rc == 0 and f"the counter in {svc.svc_chain} went up by 1 during the trace" in row["facts"]["chosen_by"]
    assert "no counter" not in row["facts"]["chosen_by"] and row["facts"]["rule_counted"] == 1
    # Both elements of the numgen map to w2's chain: every connection goes there (2 in 2), whatever numgen drew.
    listed = in_netns(n1, "nft", "-a", "list", "chain", "ip", "kube-proxy", svc.svc_chain, check=True).stdout
    handle = next(line.split("handle ")[1] for line in listed.splitlines() if "numgen" in line).strip()
    in_netns(n1, "nft", "replace", "rule", "ip", "kube-proxy", svc.svc_chain, "handle", handle,
             f"numgen random mod 2 vmap {{ 0 : goto {w2.sep_chain}, 1 : goto {w2.sep_chain} }}", check=True)
    rc, d = trace(lab, "svc/web")
    row = dnat_hop(d)
    assert rc == 0 and row["facts"]["sep_chain"] == w2.sep_chain != w1.sep_chain
    assert "2 in 2 overall" in row["facts"]["chosen_by"] and "drew" not in row["facts"]["chosen_by"]
