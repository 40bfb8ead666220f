"""One Service example of kube-proxy's own unit tests, ported: the whole nat payload, byte for byte.

kubernetes ``pkg/proxy/iptables/proxier_test.go``, ``TestInternalTrafficPolicyE2E``,
cases "internalTrafficPolicy is cluster" and "... is local and there is non-zero local endpoints"
(the test node's kube-proxy), and ``TestOverallIPTablesRules``' Service ns4/svc4 (externalIPs): ``golden/kube_proxy/*.yaml`` is its
Service and endpoints as a netlab topology, ``*.nat`` the nat table of its
``clusterExpectedIPTables``, verbatim. kube-proxy's ``NewFakeProxier`` uses the
mark ``0x4000`` and an iptables without ``--random-fully`` (a running
kube-proxy writes ``0x00004000`` and, on this machine, ``--random-fully``), and
``assertIPTablesRulesEqual`` compares after ``sortIPTablesRules`` (chains
KUBE-NODEPORTS, KUBE-SERVICES, then by name; each chain's rules in order): the
port renders with the former and compares after the latter.
"""

from __future__ import annotations

import pytest

from netlab.plan import services
from kube_proxy_golden import GOLDEN, port_nat


@pytest.mark.parametrize("case, namespace", [("internal_traffic_policy_cluster", "ns1"),
                                             ("internal_traffic_policy_local", "ns1"),
                                             ("overall_external_ip", "ns4")])
def test_nat_payload_is_kube_proxys_own_golden(case, namespace):
    assert port_nat(case, namespace) == (GOLDEN / f"{case}.nat").read_text()


def test_a_running_kube_proxy_writes_its_mark_with_eight_digits():
    """NewProxier: fmt.Sprintf("%#08x", 1<<14) pads eight digits after 0x; iptables-save prints 0x4000."""
    assert services.MASQ_MARK == "0x00004000"


def test_nftables_transaction_is_kube_proxys_own_golden():
    """kubernetes pkg/proxy/nftables/proxier_test.go, TestSyncProxyRulesRepeated (second sync), verbatim:
    netlab's table for the same Services, compared after the test's own sortNFTablesTransaction."""
    from kube_proxy_golden import port_nft, sort_nftables_transaction

    case = "sync_proxy_rules_repeated"
    want = sort_nftables_transaction((GOLDEN / f"{case}.nft").read_text())
    assert port_nft(case, ("ns1", "ns2", "ns3")) == want
