"""IPv6 ipBlocks: valid as the API server has them (ValidateIPBlock: a CIDR of either family, every except a strict
subset of cidr, so of its family), matching nothing in the IPv4 lab (evaluator, iptables rules, trace, policy
table), and said in a note by validate."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest
from cli_inprocess import run_cli
from helpers import located_problems
from netpol_cases import CASES, model

from netlab.api.topology import load
from netlab.model.netpol import Peer, policy_notes, policy_set
from netlab.plan.build import build_plan
from netlab.plan.policy import pod_chain, policy_chain
from netlab.probe.policytable import evaluate
from netlab.trace import policy as tpolicy
from netlab.trace.targets import Endpoint

BY_NAME = {c["name"]: c for c in CASES}
INGRESS = BY_NAME["ipBlock-ipv6-only-ingress"]["policies"]  # x/a from ::/0 only
EGRESS = BY_NAME["ipBlock-ipv6-only-egress"]["policies"]  # x/a to 2001:db8::/32 except 2001:db8:1::/48 only


def problems(text: str, tmp_path) -> list[tuple[int | None, str, str]]:
    return located_problems(text, tmp_path)


def topo(block: str) -> str:
    return ("name: x\nnodes: [{name: a}]\nnetworkPolicies:\n  - name: p\n    spec:\n      podSelector: {}\n"
            f"      ingress: [{{from: [{{ipBlock: {block}}}]}}]\n")


@pytest.mark.parametrize("block", ['{cidr: "2001:db8::/32"}', '{cidr: "::/0"}',
                                   '{cidr: "2001:db8::/32", except: ["2001:db8:1::/48", "2001:db8::1/128"]}',
                                   '{cidr: "fd00::/8"}'])
def test_an_ipv6_block_is_valid(tmp_path, block):
    assert problems(topo(block), tmp_path) == []


@pytest.mark.parametrize("block,expect", [
    ('{cidr: "2001:db8::/32", except: ["10.0.0.0/8"]}', "except 10.0.0.0/8 is IPv4 and cidr 2001:db8::/32 IPv6"),
    ('{cidr: 10.0.0.0/8, except: ["2001:db8::/48"]}', "except 2001:db8::/48 is IPv6 and cidr 10.0.0.0/8 IPv4"),
    ('{cidr: "2001:db8::/32", except: ["2001:db9::/48"]}', "is not inside cidr 2001:db8::/32"),
    ('{cidr: "2001:db8::/32", except: ["2001:db8::/32"]}', "is cidr itself"),
    ('{cidr: "2001:db8::"}', "has no prefix length"),
    ('{cidr: "2001:db8::g/32"}', "is not an IPv4 or IPv6 CIDR"),
    ('{cidr: "fe80::%eth0/64"}', "is not an IPv4 or IPv6 CIDR"),
])
def test_a_bad_ipv6_block_is_refused_at_its_field(tmp_path, block, expect):
    found = problems(topo(block), tmp_path)
    assert len(found) == 1 and found[0][0] == 7 and found[0][1].startswith("networkPolicies[0].spec.ingress[0]"), found
    assert expect in found[0][2], found


@pytest.mark.parametrize("policies", [INGRESS, EGRESS], ids=["ingress", "egress"])
def test_no_rule_is_written_for_an_ipv6_block(policies):
    lab = load(model("npv", policies)).lab
    n1 = next(r for r in build_plan(lab).of_kind("nat") if r.table == "filter" and r.netns.endswith("-n1"))
    direction = "ingress" if policies is INGRESS else "egress"
    chain = policy_chain(direction, lab.topo.network_policies[0])
    assert chain in n1.chains  # the pod's chain still jumps to it, and rejects what nothing marked
    assert [r for r in n1.rules if r.startswith(f"-A {chain} ")] == []
    assert not [c for c in n1.chains if c.startswith("NETPOL-EXC-")]
    assert "::" not in "\n".join(n1.rules)
    xa = policy_set(lab).pod("x-a")
    assert any(r.startswith(f"-A {pod_chain(direction, xa)} ") and "-j REJECT" in r for r in n1.rules)
    assert "is IPv6, which matches nothing in this IPv4 lab" in n1.payload


def test_the_evaluator_matches_no_address_with_an_ipv6_block():
    lab = load(model("npv", INGRESS + EGRESS)).lab
    ps = policy_set(lab)
    xa, yb = ps.pod("x-a"), ps.pod("y-b")
    for src in (Peer(yb.ip, yb), Peer(IPv4Address("203.0.113.5")), Peer(IPv4Address("0.0.0.0")),
                Peer(lab.node("n2").vtep_ip, None, "n2")):
        v = ps.flow(src, Peer(xa.ip, xa), "TCP", 80)
        assert not v.allowed and v.describe() == ("denied by policy x/from-ipv6-only (no ingress rule allows it for "
                                                  "pod x/x-a)"), src
    for dst in (Peer(yb.ip, yb), Peer(IPv4Address("1.1.1.1")), Peer(lab.node("n1").ip, None, "n1")):
        assert not ps.flow(Peer(xa.ip, xa), dst, "UDP", 81).allowed


def test_policy_table_and_trace_deny_everything_the_block_would_name():
    lab = load(model("npv", INGRESS)).lab
    table = evaluate(lab)
    into = [f for f in table.flows if f.dst == "x-a" and f.src != "x-a"]
    assert into and not any(f.allowed for f in into)
    assert all(f.allowed for f in table.flows if f.dst != "x-a")
    src = Endpoint("y-b", "pod", str(lab.pod("y-b").ip), lab.pod("y-b").netns)
    dst = Endpoint("x-a", "pod", str(lab.pod("x-a").ip), lab.pod("x-a").netns, port=80)
    entries = tpolicy.story(lab, src, dst, "tcp", 80, None, {}, {})
    assert not entries[0]["allowed"] and "by policy x/from-ipv6-only" in entries[0]["text"]


def test_validate_notes_an_ipv6_block(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(model("npv", INGRESS + EGRESS)))
    proc = run_cli("validate", "-t", str(path))
    assert proc.returncode == 0, proc.stderr
    assert (f"netlab: note: {path}:1: networkPolicies[0].spec.ingress[0].from[0].ipBlock.cidr: "  # JSON: one line
            "network policy x/from-ipv6-only ingress rule 1 peer 1: ipBlock ::/0 is IPv6, which "
            "matches nothing in this IPv4 lab (Kubernetes accepts it; the CNI writes no rule for it)") in proc.stderr
    assert "network policy x/to-ipv6-only egress rule 1 peer 1: ipBlock 2001:db8::/32 is IPv6" in proc.stderr
    lab = load(str(path)).lab
    assert len(policy_notes(lab.topo.network_policies)) == 2
    assert policy_notes(load(model("npv", BY_NAME["ipBlock-except-ingress"]["policies"])).lab.topo.network_policies) \
        == []
