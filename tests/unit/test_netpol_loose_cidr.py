"""An ipBlock written with host bits set (10.244.1.5/16): the API server takes it (ValidateIPBlock:
IsValidCIDRForLegacyField, ParseCIDRSloppy) as its network, 10.244.0.0/16, and warns that it is ambiguous; so
does netlab, with a note in validate and up. The lab's own CIDRs (podCIDR, serviceCIDR, ...) are no API field
and stay refused with the network they probably meant."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import run_cli
from helpers import located_problems

from netlab.api.topology import load
from netlab.model.netpol import policy_notes
from netlab.plan.build import build_plan


def topo(cidr: str, excepts: list[str]) -> dict:
    return {"name": "wdlc", "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}}, {"name": "b", "node": "n2"}],
            "networkPolicies": [{"name": "p", "spec": {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [
                {"from": [{"ipBlock": {"cidr": cidr, "except": excepts}}]}]}}]}


def filter_rules(lab) -> list[str]:
    return sorted(r for res in build_plan(lab).of_kind("nat") if res.table == "filter" for r in res.rules)


def test_a_block_with_host_bits_is_its_network_as_the_api_server_reads_it():
    loose = load(topo("10.244.1.5/16", ["10.244.1.7/24"])).lab
    exact = load(topo("10.244.0.0/16", ["10.244.1.0/24"])).lab
    assert loose.topo.network_policies == exact.topo.network_policies  # the same policy: the networks count
    assert filter_rules(loose) == filter_rules(exact)
    block = loose.topo.network_policies[0].spec.ingress[0].from_[0].ip_block
    assert (str(block.cidr), [str(e) for e in block.except_]) == ("10.244.0.0/16", ["10.244.1.0/24"])
    assert policy_notes(loose.topo.network_policies) == [
        "network policy default/p ingress rule 1 peer 1: ipBlock.cidr 10.244.1.5/16 has host bits set; read as "
        "10.244.0.0/16, as the API server reads it (it warns: ambiguous, 10.244.0.0/16 or 10.244.1.5/32?)",
        "network policy default/p ingress rule 1 peer 1: ipBlock.except[0] 10.244.1.7/24 has host bits set; read "
        "as 10.244.1.0/24, as the API server reads it (it warns: ambiguous, 10.244.1.0/24 or 10.244.1.7/32?)"]
    assert policy_notes(exact.topo.network_policies) == []
    # what up saves is the network: the lab's state reads back as the same policy, without a note
    saved = loose.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert saved["networkPolicies"][0]["spec"]["ingress"][0]["from"][0]["ipBlock"] == {
        "cidr": "10.244.0.0/16", "except": ["10.244.1.0/24"]}


def test_an_ipv6_block_with_host_bits_is_its_network_too():
    lab = load(topo("2001:db8::1/32", [])).lab
    (note,) = policy_notes(lab.topo.network_policies)[:1]
    assert "ipBlock.cidr 2001:db8::1/32 has host bits set; read as 2001:db8::/32" in note


def test_an_except_is_judged_inside_cidr_after_both_are_read_as_networks(tmp_path):
    """The API server compares the networks (cidrIPNet.Contains(exceptCIDR.IP), mask lengths): 10.244.1.7/16 is
    10.244.0.0/16, cidr itself, whatever its host bits."""
    found = located_problems(json.dumps(topo("10.244.1.5/16", ["10.244.1.7/16"])), tmp_path)
    assert len(found) == 1 and "except 10.244.0.0/16 is cidr itself" in found[0][2], found


def test_validate_notes_it_and_up_s_warnings_say_it(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(topo("10.244.1.5/16", [])))
    proc = run_cli("validate", "-t", str(path))
    assert proc.returncode == 0, proc.stderr
    assert (f"netlab: note: {path}:1: networkPolicies[0].spec.ingress[0].from[0].ipBlock.cidr: "  # JSON: one line
            "network policy default/p ingress rule 1 peer 1: ipBlock.cidr 10.244.1.5/16 has host "
            "bits set; read as 10.244.0.0/16") in proc.stderr


@pytest.mark.parametrize("field,value", [("podCIDR", "10.244.1.5/16"), ("serviceCIDR", "10.96.0.1/12")])
def test_the_labs_own_cidrs_stay_exact(tmp_path, field, value):
    found = located_problems(json.dumps({"name": "wdlc", "cluster": {field: value}, "nodes": [{"name": "n1"}]}), tmp_path)
    assert len(found) == 1 and "has host bits set; did you mean" in found[0][2], found
